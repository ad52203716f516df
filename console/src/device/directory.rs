//! The device page's "Customer and location" panel (templates/device/directory.html):
//! the device's directory entry (docs/intake.md, "The device directory"), and for
//! those who may write it (`manage_directory`: admins, planners) a form,
//! `POST /console/devices/{device_id}/directory`, that calls `api::intake::put_directory`,
//! the code of `PUT /api/v1/devices/{device_id}/directory`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use api::http::auth::Permission;
use api::intake::DirectoryInput;
use api::tickets::DirectoryEntry;
use domain::Lang;

use crate::csrf::CsrfForm;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, PageResult};
use crate::sign_in::audit;
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

/// The panel's words.
pub(crate) struct Words {
    pub(crate) title: &'static str,
    pub(crate) none: &'static str,
    pub(crate) serial: &'static str,
    pub(crate) customer_ref: &'static str,
    pub(crate) customer_name: &'static str,
    pub(crate) address: &'static str,
    pub(crate) lat: &'static str,
    pub(crate) lon: &'static str,
    pub(crate) region: &'static str,
    pub(crate) updated: &'static str,
    pub(crate) edit: &'static str,
    pub(crate) help: &'static str,
}

const EN: Words = Words {
    title: "Customer and location",
    none: "The directory has no entry for this device.",
    serial: "Serial number",
    customer_ref: "Customer reference",
    customer_name: "Customer",
    address: "Address",
    lat: "Latitude",
    lon: "Longitude",
    region: "Service region",
    updated: "Updated",
    edit: "Save the entry",
    help: "Every field is replaced; an empty field is cleared.",
};

const ZH: Words = Words {
    title: "客户与位置",
    none: "设备档案中没有此设备的记录。",
    serial: "序列号",
    customer_ref: "客户编号",
    customer_name: "客户",
    address: "地址",
    lat: "纬度",
    lon: "经度",
    region: "服务区域",
    updated: "更新时间",
    edit: "保存档案",
    help: "所有字段都会被替换；留空的字段将被清除。",
};

/// The panel.
pub(crate) struct DirectoryPanel {
    pub(crate) w: &'static Words,
    pub(crate) entry: Option<DirectoryEntry>,
    pub(crate) updated: String,
    pub(crate) editable: bool,
    pub(crate) action: String,
    /// The form's values (the entry's, as text).
    pub(crate) lat: String,
    pub(crate) lon: String,
}

impl DirectoryPanel {
    /// The panel of `entry` for a viewer who may (or may not) edit it.
    pub(crate) fn new(
        device_id: &str,
        entry: Option<DirectoryEntry>,
        lang: Lang,
        clock: &crate::clock::Clock,
        editable: bool,
    ) -> Self {
        Self {
            w: pick(lang, &EN, &ZH),
            updated: entry
                .as_ref()
                .map(|e| clock.at_zone(e.updated_at))
                .unwrap_or_default(),
            lat: entry
                .as_ref()
                .and_then(|e| e.lat)
                .map(|x| x.to_string())
                .unwrap_or_default(),
            lon: entry
                .as_ref()
                .and_then(|e| e.lon)
                .map(|x| x.to_string())
                .unwrap_or_default(),
            entry,
            editable,
            action: format!("{PREFIX}/devices/{device_id}/directory"),
        }
    }

    /// A field of the entry, or empty.
    pub(crate) fn value(&self, field: &str) -> String {
        let Some(e) = &self.entry else {
            return String::new();
        };
        match field {
            "serial" => e.serial.clone(),
            "customer_ref" => e.customer_ref.clone(),
            "customer_name" => e.customer_name.clone(),
            "address" => e.address.clone(),
            "region" => e.region.clone(),
            _ => None,
        }
        .unwrap_or_default()
    }
}

/// The form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DirectoryForm {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    customer_ref: String,
    #[serde(default)]
    customer_name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    lat: String,
    #[serde(default)]
    lon: String,
    #[serde(default)]
    region: String,
}

fn text(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn number(field: &str, s: &str) -> Result<Option<f64>, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .map(Some)
        .map_err(|_| Error::BadRequest(format!("{field}: not a number: {s:?}")))
}

/// `POST /console/devices/{device_id}/directory`.
pub(crate) async fn save(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    CsrfForm { viewer, form }: CsrfForm<DirectoryForm>,
) -> PageResult {
    let lang = viewer.lang();
    if !viewer.principal.may(Permission::ManageDirectory) {
        return Err(fail(lang)(Error::Forbidden(
            "the directory is kept by planners and admins".into(),
        )));
    }
    let input = DirectoryInput {
        serial: text(&form.serial),
        customer_ref: text(&form.customer_ref),
        customer_name: text(&form.customer_name),
        address: text(&form.address),
        lat: number("lat", &form.lat).map_err(fail(lang))?,
        lon: number("lon", &form.lon).map_err(fail(lang))?,
        region: text(&form.region),
    };
    let api = state.api.clone();
    let who = viewer.principal.clone();
    let id = raw.clone();
    let entry = blocking(move || Ok(api::intake::put_directory(&api, &who, &id, input)?))
        .await
        .map_err(fail(lang))?;
    audit(
        &state,
        viewer.principal.audit_record(
            "POST",
            &format!("{PREFIX}/devices/{}/directory", entry.device_id),
            303,
            format!("wrote directory entry of {}", entry.device_id),
        ),
    )
    .await;
    Ok(Redirect::to(&format!("{PREFIX}/devices/{}#directory", entry.device_id)).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::testing::{Fixture, HOSTILE};

    #[tokio::test]
    async fn planners_keep_the_directory_from_the_device_page() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let page = f.get("/console/devices/wm-1", Some(&planner)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page
            .body
            .contains("The directory has no entry for this device."));
        assert!(page
            .body
            .contains("action=\"/console/devices/wm-1/directory\""));
        let saved = f
            .post(
                "/console/devices/wm-1/directory",
                &planner,
                &[
                    ("serial", "SN-77"),
                    ("customer_ref", "C-77"),
                    ("customer_name", HOSTILE),
                    ("address", ""),
                    ("lat", "31.25"),
                    ("lon", "121.5"),
                    ("region", "east"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let page = f.get("/console/devices/wm-1", Some(&planner)).await;
        assert!(page.body.contains("SN-77"));
        assert!(page.body.contains("31.25, 121.5"));
        assert!(!page.body.contains("<script>alert"));
        let bad = f
            .post(
                "/console/devices/wm-1/directory",
                &planner,
                &[("lat", "91"), ("lon", "0")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        let nan = f
            .post("/console/devices/wm-1/directory", &planner, &[("lat", "x")])
            .await;
        assert_eq!(nan.status, StatusCode::BAD_REQUEST);
        // Engineers see no form and may not post one.
        let engineer = f.sign_in("engineer");
        let refused = f
            .post(
                "/console/devices/wm-1/directory",
                &engineer,
                &[("serial", "SN-1")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
}
