//! The service desk: what a person or an integration may do to a ticket, and doing
//! it. The JSON API's ticket handlers and the console's pages both call these, so the
//! two answer the same request with the same permission checks, the same errors and
//! the same log entries.
//!
//! The rules beside the role's permissions (docs/api.md, "Roles"): engineers see and
//! act on only the tickets assigned to them (the ticket's engineer is their key's
//! name or their login), may move them only to `in_progress` or `resolved`, and
//! diagnose only the devices of their own active tickets; dismissing takes
//! `dismiss_tickets` (planners, admins).
//!
//! Everything here is blocking (SQLite); async callers use `spawn_blocking`.

use domain::{Ticket, TicketStatus};

use crate::http::auth::{Permission, Principal};
use crate::http::AppState;
use crate::tickets::{AssignmentInput, OutcomeInput, SatisfactionInput};
use crate::{Error, Result};

/// Refuses unless `who`'s role holds `permission`.
pub fn require(who: &Principal, permission: Permission) -> Result<()> {
    if who.may(permission) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "role {} may not do this (it needs permission {})",
            who.role.as_str(),
            permission.as_str()
        )))
    }
}

/// Whether `t` is assigned to `who`: the ticket's engineer is their key's name or
/// their login.
pub fn assigned_to(who: &Principal, t: &Ticket) -> bool {
    t.assignment.engineer.as_deref() == Some(who.name.as_str())
}

/// Ticket `id`, or [`Error::NotFound`].
fn find(state: &AppState, id: i64) -> Result<Ticket> {
    state
        .tickets()
        .get(id)?
        .ok_or_else(|| Error::NotFound(format!("ticket {id} not found")))
}

/// Ticket `id` for `who` to read: [`Error::Forbidden`] for an engineer when it is not
/// theirs (the console's rule; the JSON API lets any role with `read_tickets` read
/// every ticket, which integrations rely on).
pub fn ticket_for_person(state: &AppState, who: &Principal, id: i64) -> Result<Ticket> {
    require(who, Permission::ReadTickets)?;
    let t = find(state, id)?;
    if who.restricted_to_assigned() && !assigned_to(who, &t) {
        return Err(Error::Forbidden(format!(
            "ticket {} is not assigned to {}; engineers open their own tickets",
            t.number, who.name
        )));
    }
    Ok(t)
}

/// Whether `who` may act on `t` (moving it to `to`, when given).
pub fn check_may_act(who: &Principal, t: &Ticket, to: Option<TicketStatus>) -> Result<()> {
    if to == Some(TicketStatus::Dismissed) && !who.may(Permission::DismissTickets) {
        return Err(Error::Forbidden(format!(
            "role {} may not dismiss tickets",
            who.role.as_str()
        )));
    }
    if who.restricted_to_assigned() {
        if !assigned_to(who, t) {
            return Err(Error::Forbidden(format!(
                "ticket {} is not assigned to {}; engineers act on their own tickets",
                t.id, who.name
            )));
        }
        if let Some(to) = to {
            if !matches!(to, TicketStatus::InProgress | TicketStatus::Resolved) {
                return Err(Error::Forbidden(format!(
                    "engineers may move a ticket to in_progress or resolved, not {to}"
                )));
            }
        }
    }
    Ok(())
}

/// The statuses `who` may move `t` to now: the lifecycle's (with the reopen window),
/// less what their role may not do.
pub fn allowed_transitions(state: &AppState, who: &Principal, t: &Ticket) -> Vec<TicketStatus> {
    if !who.may(Permission::TransitionTickets) {
        return Vec::new();
    }
    state
        .tickets()
        .allowed_transitions(t)
        .into_iter()
        .filter(|to| check_may_act(who, t, Some(*to)).is_ok())
        .collect()
}

/// The same own-ticket rule for a device (remote diagnosis, commands): engineers only
/// while one of the device's active tickets (`active`) is assigned to them.
pub fn check_may_diagnose(who: &Principal, device_id: &str, active: &[Ticket]) -> Result<()> {
    if who.restricted_to_assigned() && !active.iter().any(|t| assigned_to(who, t)) {
        return Err(Error::Forbidden(format!(
            "no active ticket of device {device_id} is assigned to {}; engineers diagnose the devices of their own tickets",
            who.name
        )));
    }
    Ok(())
}

/// Checks a confirmed failure's component against the device's profile, when known.
fn check_component(state: &AppState, t: &Ticket, o: &OutcomeInput) -> Result<()> {
    let (Some(c), Some(profile)) = (&o.component, state.profiles().get(&t.device_type)) else {
        return Ok(());
    };
    if profile.component(c).is_none() {
        let known: Vec<&str> = profile
            .components()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(Error::invalid(format!(
            "outcome.component: {c:?} is not a component of {}; expected one of {}",
            t.device_type,
            known.join(", ")
        )));
    }
    Ok(())
}

/// Moves ticket `id` to `to` for `who`, with a note and (to `resolved` or `closed`)
/// an outcome.
#[tracing::instrument(skip_all, fields(ticket_id = id, to = %to))]
pub fn transition(
    state: &AppState,
    who: &Principal,
    id: i64,
    to: TicketStatus,
    note: &str,
    outcome: Option<OutcomeInput>,
) -> Result<Ticket> {
    require(who, Permission::TransitionTickets)?;
    let t = find(state, id)?;
    check_may_act(who, &t, Some(to))?;
    if let Some(o) = &outcome {
        check_component(state, &t, o)?;
    }
    let actor = who.actor();
    let t = state.tickets().transition(id, to, &actor, note, outcome)?;
    tracing::info!(%actor, "Ticket transition");
    Ok(t)
}

/// Sets ticket `id`'s engineer, window and region for `who`, within the engineer's
/// daily capacity ([`assign_checked`] without an override).
#[tracing::instrument(skip_all, fields(ticket_id = id))]
pub fn assign(
    state: &AppState,
    who: &Principal,
    id: i64,
    input: AssignmentInput,
) -> Result<Ticket> {
    assign_checked(state, who, id, input, false).map(|(t, _)| t)
}

/// Sets ticket `id`'s engineer, window and region for `who` (docs/dispatch.md,
/// "Capacity"). When the server keeps an engineers' directory, an assignment that
/// would book the engineer over their daily capacity on the visit's day (today
/// without a window) is [`Error::Conflict`] naming the load, unless
/// `override_capacity`, which the `assigned` log note records; a login that is not a
/// registered engineer is allowed, noted "not a registered engineer". Returns the
/// ticket and the override's description, for the audit log.
#[tracing::instrument(skip_all, fields(ticket_id = id))]
pub fn assign_checked(
    state: &AppState,
    who: &Principal,
    id: i64,
    input: AssignmentInput,
    override_capacity: bool,
) -> Result<(Ticket, Option<String>)> {
    require(who, Permission::AssignTickets)?;
    let mut extra = String::new();
    let mut overridden = None;
    if let (Some(d), Some(engineer)) = (state.dispatcher(), input.engineer.as_deref()) {
        match d.check_capacity(id, engineer.trim(), input.window_start)? {
            crate::dispatch::CapacityCheck::NotAnEngineer => {
                extra = "not a registered engineer".to_owned();
            }
            crate::dispatch::CapacityCheck::Booked {
                day,
                load,
                capacity,
            } if load >= capacity => {
                if !override_capacity {
                    return Err(Error::Conflict(format!(
                        "{engineer} already has {load} visits booked on {day}, their daily capacity is {capacity}; send \"override_capacity\": true to assign anyway"
                    )));
                }
                let text = format!(
                    "capacity override: {engineer} had {load} of {capacity} visits booked on {day}"
                );
                extra.clone_from(&text);
                overridden = Some(text);
            }
            crate::dispatch::CapacityCheck::Booked { .. } => {}
        }
    }
    let actor = who.actor();
    let t = state
        .tickets()
        .assign_with(id, input, &actor, &extra, |_, _, _| Ok(()))?;
    if let Some(o) = &overridden {
        tracing::warn!(%actor, override = %o, "Assignment over capacity");
    }
    Ok((t, overridden))
}

// ---------------------------------------------------------------------------------
// Engineers and dispatch: the same checks for the JSON API and the console.

fn dispatcher(state: &AppState) -> Result<&crate::dispatch::Dispatcher> {
    state
        .dispatcher()
        .ok_or_else(|| Error::NotFound("this server keeps no engineers' directory".into()))
}

/// Every engineer with their load, for `who` (needs `assign_tickets`).
pub fn engineers(state: &AppState, who: &Principal) -> Result<Vec<crate::dispatch::EngineerView>> {
    require(who, Permission::AssignTickets)?;
    dispatcher(state)?.engineers()
}

/// Engineer `login` with their load, for `who` (needs `assign_tickets`).
pub fn engineer(
    state: &AppState,
    who: &Principal,
    login: &str,
) -> Result<crate::dispatch::EngineerView> {
    require(who, Permission::AssignTickets)?;
    dispatcher(state)?
        .engineer(login)?
        .ok_or_else(|| Error::NotFound(format!("no engineer {login:?}")))
}

/// Every skill the device profiles' components name, sorted.
pub fn known_skills(state: &AppState) -> Vec<String> {
    let mut skills: Vec<String> = state
        .profiles()
        .iter()
        .flat_map(|p| p.components().iter().flat_map(|c| c.skills.iter().cloned()))
        .collect();
    skills.sort();
    skills.dedup();
    skills
}

/// An engineer's profile and account details as a planner writes them.
#[derive(Clone, Debug)]
pub struct EngineerInput {
    /// Display name (kept when absent; the login for a new account).
    pub display_name: Option<String>,
    /// IANA time zone of the account (kept when absent; UTC for a new account).
    pub time_zone: Option<String>,
    /// The profile.
    pub profile: store::engineers::EngineerProfile,
}

/// Registers engineer `login` (creating the engineer account, whose generated
/// password is returned once) or updates their profile, for `who` (needs
/// `manage_engineers`). Skill names must be the profiles' ([`known_skills`]).
#[tracing::instrument(skip_all, fields(login))]
pub fn put_engineer(
    state: &AppState,
    who: &Principal,
    login: &str,
    input: EngineerInput,
) -> Result<store::engineers::PutEngineer> {
    require(who, Permission::ManageEngineers)?;
    let known = known_skills(state);
    if let Some(bad) = input.profile.skills.keys().find(|k| !known.contains(k)) {
        return Err(Error::invalid(format!(
            "skills: {:?} is not a skill of any component; expected one of {}",
            bad.chars().take(64).collect::<String>(),
            known.join(", ")
        )));
    }
    let d = dispatcher(state)?;
    let new = store::engineers::NewEngineer {
        display_name: input.display_name.as_deref().unwrap_or(""),
        lang: domain::Lang::default(),
        time_zone: "UTC",
    };
    d.users()
        .put_engineer(login, &input.profile, &new, input.time_zone.as_deref())
        .map_err(|e| match e {
            store::Error::Invalid(m) => Error::invalid(m),
            e => e.into(),
        })
}

/// The ranking of engineers for ticket `id`, for `who` (needs `assign_tickets`).
pub fn candidates(state: &AppState, who: &Principal, id: i64) -> Result<crate::dispatch::Ranking> {
    require(who, Permission::AssignTickets)?;
    let d = dispatcher(state)?;
    let t = find(state, id)?;
    d.rank(&t)
}

/// Records what the visit to ticket `id` found, for `who`.
#[tracing::instrument(skip_all, fields(ticket_id = id))]
pub fn record_outcome(
    state: &AppState,
    who: &Principal,
    id: i64,
    input: OutcomeInput,
) -> Result<Ticket> {
    require(who, Permission::RecordOutcome)?;
    let t = find(state, id)?;
    check_may_act(who, &t, None)?;
    check_component(state, &t, &input)?;
    state.tickets().record_outcome(id, input, &who.actor())
}

/// Adds `note` to ticket `id`'s log, for `who` (anyone who may move the ticket).
#[tracing::instrument(skip_all, fields(ticket_id = id))]
pub fn add_note(state: &AppState, who: &Principal, id: i64, note: &str) -> Result<Ticket> {
    require(who, Permission::TransitionTickets)?;
    let t = find(state, id)?;
    check_may_act(who, &t, None)?;
    state.tickets().add_note(id, note, &who.actor())
}

/// Records the customer's satisfaction with ticket `id`, for `who` (needs
/// `record_satisfaction`: planners, admins, integrations).
#[tracing::instrument(skip_all, fields(ticket_id = id))]
pub fn record_satisfaction(
    state: &AppState,
    who: &Principal,
    id: i64,
    input: SatisfactionInput,
) -> Result<Ticket> {
    require(who, Permission::RecordSatisfaction)?;
    state.tickets().record_satisfaction(id, input, &who.actor())
}

/// Marks ticket `id`'s call-back done with `note`, for `who` (needs
/// `record_satisfaction`).
#[tracing::instrument(skip_all, fields(ticket_id = id))]
pub fn complete_callback(state: &AppState, who: &Principal, id: i64, note: &str) -> Result<Ticket> {
    require(who, Permission::RecordSatisfaction)?;
    state.tickets().complete_callback(id, note, &who.actor())
}

// ---------------------------------------------------------------------------------
// Devices and fleet alarms: the same checks for the JSON API and the console.

/// Active tickets read per device: at most one per component, so this is every one.
const ACTIVE_PER_DEVICE: usize = 1000;

/// Device `id` for `who` to diagnose (its page, its diagnosis, its commands): the
/// device ([`Error::NotFound`] if it never reported) and its active tickets, after the
/// own-ticket rule of [`check_may_diagnose`]. Needs `diagnose`.
pub fn device_for_diagnosis(
    state: &AppState,
    who: &Principal,
    id: &domain::DeviceId,
) -> Result<(store::hot::DeviceRecord, Vec<Ticket>)> {
    require(who, Permission::Diagnose)?;
    let device = state
        .store()
        .device(id.as_str())?
        .ok_or_else(|| Error::NotFound(format!("device {id} not found")))?;
    let active = state
        .tickets()
        .device_tickets(id.as_str(), true, ACTIVE_PER_DEVICE)?;
    check_may_diagnose(who, id.as_str(), &active)?;
    Ok((device, active))
}

/// Sends `command` (one of [`domain::COMMANDS`]) to device `id` for `who`, after
/// [`device_for_diagnosis`]; the command is pending (or failed if it could not be
/// published). [`Error::NotFound`] when this server sends no commands.
pub fn send_command(
    state: &AppState,
    who: &Principal,
    id: &domain::DeviceId,
    command: &str,
) -> Result<crate::commands::CommandRecord> {
    if !domain::COMMANDS.contains(&command) {
        return Err(Error::invalid(format!(
            "command: {:?} is not a command; expected one of {}",
            command.chars().take(64).collect::<String>(),
            domain::COMMANDS.join(", ")
        )));
    }
    let commands = state
        .commands()
        .cloned()
        .ok_or_else(|| Error::NotFound("this server does not send device commands".into()))?;
    device_for_diagnosis(state, who, id)?;
    commands.send(id, command, &who.name)
}

/// Acknowledges batch alarm `id` for `who` with `note` (needs
/// `acknowledge_alarms`); see [`crate::fleet::Fleet::acknowledge`].
pub fn acknowledge_alarm(
    state: &AppState,
    who: &Principal,
    id: i64,
    note: &str,
) -> Result<crate::fleet::AlarmRecord> {
    require(who, Permission::AcknowledgeAlarms)?;
    state.fleet().acknowledge(id, &who.actor(), note)
}
