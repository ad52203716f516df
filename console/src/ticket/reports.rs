//! The ticket page's "Customer reports" panel (templates/ticket/reports.html): every
//! customer report the ticket holds and its latest pre-judgement (docs/intake.md). The
//! pre-judgement's view is shared with the call-centre form's answer
//! (`crate::report`).

use domain::{
    Evidence, Lang, PreJudgement, ProblemCategory, Profile, ReportChannel, Severity, Ticket,
};

use crate::clock::Clock;
use crate::i18n::{pick, severity_class};

/// The panel's and the pre-judgement's words.
pub(crate) struct Words {
    pub(crate) reports: &'static str,
    pub(crate) no_reports: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) category: &'static str,
    pub(crate) words: &'static str,
    pub(crate) reporter: &'static str,
    pub(crate) customer: &'static str,
    pub(crate) joined: &'static str,
    pub(crate) first: &'static str,
    pub(crate) prejudgement: &'static str,
    pub(crate) likely: &'static str,
    pub(crate) not_confident: &'static str,
    pub(crate) confidence: &'static str,
    pub(crate) candidates: &'static str,
    pub(crate) evidence: &'static str,
    pub(crate) no_evidence: &'static str,
    pub(crate) fault_code: &'static str,
    pub(crate) risk: &'static str,
    pub(crate) flagged: &'static str,
    pub(crate) reading: &'static str,
    pub(crate) normal_range: &'static str,
    pub(crate) symptom: &'static str,
    pub(crate) nuisance: &'static str,
    pub(crate) no_component: &'static str,
    pub(crate) remote_checks: &'static str,
    pub(crate) channel_phone: &'static str,
    pub(crate) channel_app: &'static str,
    pub(crate) channel_web: &'static str,
    pub(crate) channel_installer: &'static str,
    pub(crate) channel_device: &'static str,
    pub(crate) category_down: &'static str,
    pub(crate) category_degraded: &'static str,
    pub(crate) category_error_code: &'static str,
    pub(crate) category_noise: &'static str,
    pub(crate) category_leak: &'static str,
    pub(crate) category_installation: &'static str,
    pub(crate) category_question: &'static str,
}

pub(crate) const EN: Words = Words {
    reports: "Customer reports",
    no_reports: "No customer has reported this problem.",
    channel: "Channel",
    category: "Problem",
    words: "Customer's words",
    reporter: "Taken by",
    customer: "Customer",
    joined: "joined this ticket",
    first: "opened this ticket",
    prejudgement: "Pre-judgement from the device's data",
    likely: "Likely component",
    not_confident: "The data does not point at one component with confidence.",
    confidence: "confidence",
    candidates: "Candidates",
    evidence: "Evidence",
    no_evidence: "No data points anywhere (the device may never have reported).",
    fault_code: "Fault code",
    risk: "Risk",
    flagged: "flagged",
    reading: "Reading",
    normal_range: "fleet normal",
    symptom: "The customer's problem is a symptom of",
    nuisance: "Nuisance code",
    no_component: "no component",
    remote_checks: "remote checks",
    channel_phone: "Phone",
    channel_app: "App",
    channel_web: "Web",
    channel_installer: "Installer",
    channel_device: "Device",
    category_down: "Not working",
    category_degraded: "Works poorly",
    category_error_code: "Error code shown",
    category_noise: "Noise or vibration",
    category_leak: "Leak",
    category_installation: "Installation",
    category_question: "Question",
};

pub(crate) const ZH: Words = Words {
    reports: "客户报修",
    no_reports: "尚无客户报修此问题。",
    channel: "渠道",
    category: "问题类别",
    words: "客户描述",
    reporter: "受理人",
    customer: "客户",
    joined: "并入本工单",
    first: "创建本工单",
    prejudgement: "根据设备数据的预判",
    likely: "可能的部件",
    not_confident: "设备数据未能确定地指向某一部件。",
    confidence: "置信度",
    candidates: "候选部件",
    evidence: "依据",
    no_evidence: "没有可用的数据（设备可能从未上报）。",
    fault_code: "故障码",
    risk: "风险",
    flagged: "已预警",
    reading: "读数",
    normal_range: "同型号正常范围",
    symptom: "客户描述的问题是以下部件的症状",
    nuisance: "提示性故障码",
    no_component: "不指向部件",
    remote_checks: "远程检查",
    channel_phone: "电话",
    channel_app: "App",
    channel_web: "网页",
    channel_installer: "安装人员",
    channel_device: "设备",
    category_down: "无法工作",
    category_degraded: "工作不良",
    category_error_code: "显示故障码",
    category_noise: "异响或振动",
    category_leak: "漏水",
    category_installation: "安装问题",
    category_question: "咨询",
};

impl Words {
    /// A channel's name.
    pub(crate) fn channel_name(&self, c: ReportChannel) -> &'static str {
        match c {
            ReportChannel::Phone => self.channel_phone,
            ReportChannel::App => self.channel_app,
            ReportChannel::Web => self.channel_web,
            ReportChannel::Installer => self.channel_installer,
            ReportChannel::Device => self.channel_device,
        }
    }

    /// A category's name.
    pub(crate) fn category_name(&self, c: ProblemCategory) -> &'static str {
        match c {
            ProblemCategory::Down => self.category_down,
            ProblemCategory::Degraded => self.category_degraded,
            ProblemCategory::ErrorCode => self.category_error_code,
            ProblemCategory::Noise => self.category_noise,
            ProblemCategory::Leak => self.category_leak,
            ProblemCategory::Installation => self.category_installation,
            ProblemCategory::Question => self.category_question,
        }
    }
}

/// The words of `lang`.
pub(crate) fn words(lang: Lang) -> &'static Words {
    pick(lang, &EN, &ZH)
}

/// A component's title in the viewer's language (its name when unknown).
fn title(profile: Option<&Profile>, lang: Lang, component: &str) -> String {
    profile
        .and_then(|p| p.component(component))
        .map_or_else(|| component.to_owned(), |c| c.title_in(lang).to_owned())
}

/// One line of evidence.
pub(crate) struct EvidenceLine {
    /// What kind (fault code, risk, reading, symptom), translated.
    pub(crate) kind: &'static str,
    /// The component's title.
    pub(crate) component: String,
    /// The detail: code and catalogue title, risk, value and range.
    pub(crate) detail: String,
    /// A badge class (severity of a code, `bad` for a flagged risk), or empty.
    pub(crate) badge: &'static str,
    /// The badge's text, or empty.
    pub(crate) badge_text: String,
}

/// A candidate with its confidence.
pub(crate) struct CandidateLine {
    pub(crate) component: String,
    pub(crate) confidence: String,
}

/// A pre-judgement as pages show it.
pub(crate) struct PrejudgementView {
    pub(crate) likely: Option<String>,
    pub(crate) confidence: String,
    pub(crate) candidates: Vec<CandidateLine>,
    pub(crate) evidence: Vec<EvidenceLine>,
}

impl PrejudgementView {
    /// The view of `pj` for a viewer in `lang`.
    pub(crate) fn new(pj: &PreJudgement, profile: Option<&Profile>, clock: &Clock) -> Self {
        let lang = clock.lang;
        let w = words(lang);
        let common = crate::i18n::common(lang);
        let evidence = pj
            .evidence
            .iter()
            .map(|e| match e {
                Evidence::FaultCode {
                    component,
                    code,
                    ts,
                    title: catalogue,
                    severity,
                } => {
                    let def = profile.and_then(|p| p.fault(code));
                    let text = def.map_or_else(
                        || catalogue.clone().unwrap_or_default(),
                        |d| d.title_in(lang).to_owned(),
                    );
                    let sev = def.map(|d| d.severity).or_else(|| {
                        severity.as_deref().and_then(|s| match s {
                            "critical" => Some(Severity::Critical),
                            "major" => Some(Severity::Major),
                            "minor" => Some(Severity::Minor),
                            "info" => Some(Severity::Info),
                            _ => None,
                        })
                    });
                    EvidenceLine {
                        kind: w.fault_code,
                        component: title(profile, lang, component),
                        detail: format!("{code} {text} · {}", clock.at(*ts)),
                        badge: sev.map_or("", severity_class),
                        badge_text: sev.map_or_else(String::new, |s| common.severity(s).to_owned()),
                    }
                }
                Evidence::Risk {
                    component,
                    risk,
                    flagged,
                } => EvidenceLine {
                    kind: w.risk,
                    component: title(profile, lang, component),
                    detail: clock.number(*risk, 2),
                    badge: if *flagged { "bad" } else { "" },
                    badge_text: if *flagged {
                        w.flagged.to_owned()
                    } else {
                        String::new()
                    },
                },
                Evidence::Reading {
                    component,
                    channel,
                    value,
                    low,
                    high,
                } => EvidenceLine {
                    kind: w.reading,
                    component: title(profile, lang, component),
                    detail: format!(
                        "{channel} = {} ({} {}–{})",
                        clock.number(*value, 2),
                        w.normal_range,
                        clock.number(*low, 2),
                        clock.number(*high, 2)
                    ),
                    badge: "",
                    badge_text: String::new(),
                },
                Evidence::Nuisance {
                    code,
                    ts,
                    title: catalogue,
                    ..
                } => {
                    let def = profile.and_then(|p| p.fault(code));
                    let text = def.map_or_else(
                        || catalogue.clone().unwrap_or_default(),
                        |d| d.title_in(lang).to_owned(),
                    );
                    let checks = def
                        .map(|d| d.remote_checks_in(lang).join("; "))
                        .unwrap_or_default();
                    let mut detail = format!("{code} {text} · {}", clock.at(*ts));
                    if !checks.is_empty() {
                        detail.push_str(&format!(" · {}: {checks}", w.remote_checks));
                    }
                    EvidenceLine {
                        kind: w.nuisance,
                        component: w.no_component.to_owned(),
                        detail,
                        badge: "",
                        badge_text: String::new(),
                    }
                }
                Evidence::Category {
                    component,
                    category,
                } => EvidenceLine {
                    kind: w.symptom,
                    component: title(profile, lang, component),
                    detail: w.category_name(*category).to_owned(),
                    badge: "",
                    badge_text: String::new(),
                },
            })
            .collect();
        Self {
            likely: pj.component.as_deref().map(|c| title(profile, lang, c)),
            confidence: clock.percent(pj.confidence, 0),
            candidates: pj
                .candidates
                .iter()
                .map(|c| CandidateLine {
                    component: title(profile, lang, &c.component),
                    confidence: clock.percent(c.confidence, 0),
                })
                .collect(),
            evidence,
        }
    }
}

/// One customer report on the panel.
pub(crate) struct ReportLine {
    pub(crate) at: String,
    pub(crate) channel: &'static str,
    pub(crate) category: &'static str,
    pub(crate) words: String,
    pub(crate) reporter: String,
    pub(crate) customer: Option<String>,
    pub(crate) joined: bool,
}

/// The panel.
pub(crate) struct ReportsPanel {
    pub(crate) w: &'static Words,
    pub(crate) reports: Vec<ReportLine>,
    pub(crate) pj: Option<PrejudgementView>,
}

impl ReportsPanel {
    /// The panel of `t`; `None` when the ticket holds no report and no pre-judgement
    /// (a ticket from the device alone: the panel is not shown).
    pub(crate) fn new(t: &Ticket, profile: Option<&Profile>, clock: &Clock) -> Option<Self> {
        if t.reports.is_empty() && t.prejudgement.is_none() {
            return None;
        }
        let w = words(clock.lang);
        Some(Self {
            w,
            reports: t
                .reports
                .iter()
                .map(|r| ReportLine {
                    at: clock.at(r.at),
                    channel: w.channel_name(r.channel),
                    category: w.category_name(r.category),
                    words: r.words.clone(),
                    reporter: r.reporter.clone(),
                    customer: r.customer_ref.clone(),
                    joined: r.joined,
                })
                .collect(),
            pj: t
                .prejudgement
                .as_ref()
                .map(|pj| PrejudgementView::new(pj, profile, clock)),
        })
    }
}
