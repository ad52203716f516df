//! The console's words in English and Simplified Chinese.
//!
//! Each page's words are a struct of `&'static str` fields with one constant per
//! language, so a word missing in one language is a compile error, not a blank on a
//! page. [`Common`] holds what every page shares (navigation, buttons, errors); a page
//! module keeps its own struct beside its handler. Catalogue text (component and fault
//! titles, remote checks, part names) comes from the profiles
//! (`domain::Profile::*_in(lang)`).

use domain::Lang;

/// Picks the constant of `lang` from a page's two.
pub(crate) fn pick<T>(lang: Lang, en: &'static T, zh: &'static T) -> &'static T {
    match lang {
        Lang::En => en,
        Lang::Zh => zh,
    }
}

/// What every page shares.
#[derive(Debug)]
pub(crate) struct Common {
    pub(crate) product: &'static str,
    pub(crate) nav_queue: &'static str,
    pub(crate) nav_my_day: &'static str,
    pub(crate) nav_fleet: &'static str,
    pub(crate) nav_models: &'static str,
    pub(crate) nav_admin: &'static str,
    pub(crate) nav_account: &'static str,
    pub(crate) sign_out: &'static str,
    pub(crate) signed_in_as: &'static str,
    pub(crate) language: &'static str,
    pub(crate) other_language: &'static str,
    pub(crate) other_language_code: &'static str,
    pub(crate) skip_to_content: &'static str,
    pub(crate) error_title: &'static str,
    pub(crate) error_bad_request: &'static str,
    pub(crate) error_forbidden: &'static str,
    pub(crate) error_not_found: &'static str,
    pub(crate) error_conflict: &'static str,
    pub(crate) error_server: &'static str,
    pub(crate) back_home: &'static str,
    pub(crate) save: &'static str,
    pub(crate) role_admin: &'static str,
    pub(crate) role_planner: &'static str,
    pub(crate) role_engineer: &'static str,
    pub(crate) role_integration: &'static str,
    pub(crate) previous_page: &'static str,
    pub(crate) next_page: &'static str,
    pub(crate) none: &'static str,
}

pub(crate) const COMMON_EN: Common = Common {
    product: "fixahead service console",
    nav_queue: "Queue",
    nav_my_day: "My day",
    nav_fleet: "Fleet",
    nav_models: "Models",
    nav_admin: "Admin",
    nav_account: "Account",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    language: "Language",
    other_language: "中文",
    other_language_code: "zh",
    skip_to_content: "Skip to content",
    error_title: "Something went wrong",
    error_bad_request: "The request could not be used",
    error_forbidden: "You may not do this",
    error_not_found: "Not found",
    error_conflict: "Not possible now",
    error_server: "The server could not answer. The error is in its log; try again in a moment.",
    back_home: "Back to the queue",
    save: "Save",
    role_admin: "Admin",
    role_planner: "Planner",
    role_engineer: "Engineer",
    role_integration: "Integration",
    previous_page: "Previous",
    next_page: "Next",
    none: "none",
};

pub(crate) const COMMON_ZH: Common = Common {
    product: "fixahead 服务控制台",
    nav_queue: "工单队列",
    nav_my_day: "我的日程",
    nav_fleet: "设备群",
    nav_models: "模型",
    nav_admin: "管理",
    nav_account: "账户",
    sign_out: "退出登录",
    signed_in_as: "当前用户",
    language: "语言",
    other_language: "English",
    other_language_code: "en",
    skip_to_content: "跳到正文",
    error_title: "出错了",
    error_bad_request: "请求无法处理",
    error_forbidden: "您没有执行此操作的权限",
    error_not_found: "未找到",
    error_conflict: "当前无法执行",
    error_server: "服务器暂时无法响应，错误已记录在日志中，请稍后重试。",
    back_home: "返回工单队列",
    save: "保存",
    role_admin: "管理员",
    role_planner: "服务计划员",
    role_engineer: "工程师",
    role_integration: "系统集成",
    previous_page: "上一页",
    next_page: "下一页",
    none: "无",
};

/// The common words of `lang`.
pub(crate) fn common(lang: Lang) -> &'static Common {
    pick(lang, &COMMON_EN, &COMMON_ZH)
}

impl Common {
    /// A role's name.
    pub(crate) fn role(&self, role: domain::Role) -> &'static str {
        match role {
            domain::Role::Admin => self.role_admin,
            domain::Role::Planner => self.role_planner,
            domain::Role::Engineer => self.role_engineer,
            domain::Role::Integration => self.role_integration,
        }
    }
}
