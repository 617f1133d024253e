//! What a subscription will receive next if nothing changes: computed from its schedule in its
//! zone, its position in its message set, the set's `next_set` chain and each set's send window;
//! never stored.
//!
//! The walk follows what the service does: a waiting send job goes first, at its run time; a
//! send outside its window leaves at the window's next opening, and the schedule's next due
//! minute after that is the next send (a tick finding a send still waiting adds none); a
//! completed set's `next_set` starts from its first message on that set's default schedule.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Cron;
use crate::content::zone::{effective_zone, window_of, SendWindow, Tz};
use crate::domain::{Error, Result};
use crate::model::content::{Message, MessageSet, Schedule};
use crate::model::subscriptions::{status, Subscription};
use crate::store::jobs::JobRow;
use crate::store::{content as content_sql, local_time as sql, subscriptions as sub_sql};
use crate::store::{Db, Pooled};
use crate::subscriptions::resend_sequence_number;

/// Most sends one forecast lists.
pub const MAX_SENDS: usize = 100;
/// How many sends ahead the walk looks for where the programme ends.
const END_HORIZON: usize = 5_000;

pub struct Forecast {
    pub subscription: Subscription,
    /// The subscriber's zone now: their own, else their schedule's.
    pub zone: Tz,
    /// The send job already waiting (or running), if any.
    pub pending: Option<JobRow>,
    pub sends: Vec<ForecastSend>,
    pub end: ProgrammeEnd,
}

pub struct ForecastSend {
    /// When the schedule is due (or the waiting job's run time).
    pub due: DateTime<Utc>,
    /// When the send leaves: `due`, or its window's next opening.
    pub sends_at: DateTime<Utc>,
    pub zone: Tz,
    pub set: MessageSet,
    pub sequence_number: i32,
    pub resend: bool,
    /// `None` when the set has no such message in the subscriber's language (the send fails).
    pub message: Option<Message>,
    /// The path of the message's binary content under the media root.
    pub binary_path: Option<String>,
}

/// Where the programme ends, as far as the walk can tell.
pub struct ProgrammeEnd {
    /// `last_message`, `next_set_loops`, `no_messages`, `never_due`, `not_active`,
    /// `completed`, `not_ready` or `beyond_horizon`.
    pub reason: &'static str,
    /// The last send: its set, sequence number, time and zone, and how many sends until then.
    pub last: Option<(MessageSet, i32, DateTime<Utc>, Tz, usize)>,
}

/// One send of the walk, before its message is looked up.
struct Step {
    due: DateTime<Utc>,
    sends_at: DateTime<Utc>,
    zone: Tz,
    set: MessageSet,
    sequence_number: i32,
    resend: bool,
}

/// Where the subscriber stands: a set, its schedule, its window and a sequence number.
struct Position {
    set: MessageSet,
    cron: Cron,
    zone: Tz,
    window: Option<SendWindow>,
    last: Option<i32>,
    sequence_number: i32,
}

/// Content read once per forecast.
struct Reader<'c> {
    conn: &'c mut Pooled,
    lang: String,
    timezone: Option<String>,
    default_window: Option<SendWindow>,
    schedules: HashMap<i64, Schedule>,
}

impl Reader<'_> {
    async fn position(&mut self, set_id: i64, schedule_id: i64, seq: i32) -> Result<Position> {
        let set = content_sql::get_message_set(self.conn.conn(), set_id)
            .await?
            .ok_or(Error::NotFound)?;
        if !self.schedules.contains_key(&schedule_id) {
            let schedule = content_sql::get_schedule(self.conn.conn(), schedule_id)
                .await?
                .ok_or(Error::NotFound)?;
            self.schedules.insert(schedule_id, schedule);
        }
        let schedule = &self.schedules[&schedule_id];
        let cron = Cron::parse(schedule).map_err(|e| Error::Refused(e.to_string()))?;
        let zone = effective_zone(self.timezone.as_deref(), &schedule.timezone);
        let last = sub_sql::last_sequence_number(self.conn.conn(), set.id, &self.lang).await?;
        Ok(Position {
            window: window_of(&set, self.default_window),
            set,
            cron,
            zone,
            last,
            sequence_number: seq,
        })
    }

    /// The next set's position after the last message of `p`'s set, or why there is none.
    async fn next_set(&mut self, p: &Position) -> Result<Option<Position>> {
        let Some(next_id) = p.set.next_set_id else {
            return Ok(None);
        };
        let Some(next) = content_sql::get_message_set(self.conn.conn(), next_id).await? else {
            return Ok(None);
        };
        self.position(next.id, next.default_schedule_id, 1)
            .await
            .map(Some)
    }
}

impl Position {
    fn step(&self, due: DateTime<Utc>, sequence_number: i32, resend: bool) -> Step {
        let sends_at = self
            .window
            .map_or(due, |w| w.next_send_time(self.zone, due));
        Step {
            due,
            sends_at,
            zone: self.zone,
            set: self.set.clone(),
            sequence_number,
            resend,
        }
    }
}

/// The next `n` sends of the subscription after `now`.
pub async fn forecast(
    db: &Db,
    id: Uuid,
    n: usize,
    default_window: Option<SendWindow>,
    now: DateTime<Utc>,
) -> Result<Forecast> {
    let mut conn = db.acquire().await?;
    let subscription = sub_sql::get_subscription(conn.conn(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let pending = sql::unfinished_send(conn.conn(), id).await?;
    let mut reader = Reader {
        conn: &mut conn,
        lang: subscription.lang.clone(),
        timezone: subscription.timezone.clone(),
        default_window,
        schedules: HashMap::new(),
    };
    let first = reader
        .position(
            subscription.message_set_id,
            subscription.schedule_id,
            subscription.next_sequence_number,
        )
        .await?;
    let zone = first.zone;
    let (steps, end) = walk(&mut reader, &subscription, pending.as_ref(), first, n, now).await?;
    let mut sends = Vec::with_capacity(steps.listed.len());
    for step in steps.listed {
        sends.push(with_message(&mut reader, step).await?);
    }
    Ok(Forecast {
        subscription,
        zone,
        pending,
        sends,
        end,
    })
}

/// The sends of a walk: the first `n` kept, the rest counted, and the latest.
struct Steps {
    n: usize,
    listed: Vec<Step>,
    count: usize,
    last: Option<Step>,
}

impl Steps {
    fn push(&mut self, step: Step) {
        self.count += 1;
        if self.listed.len() < self.n {
            self.listed.push(step);
        } else {
            self.last = Some(step);
        }
    }

    fn last(&self) -> Option<&Step> {
        self.last.as_ref().or(self.listed.last())
    }
}

/// Why a subscription gets no sends at all, if it gets none: ticks skip it and no send waits.
fn stopped(s: &Subscription, pending: Option<&JobRow>) -> Option<&'static str> {
    let resend_waiting = pending.is_some_and(|job| job.payload.0["resend"] == true);
    if pending.is_some() && (s.is_live() || resend_waiting) {
        return None;
    }
    if s.completed {
        Some("completed")
    } else if !s.active {
        Some("not_active")
    } else if pending.is_none() && s.process_status != status::READY {
        Some("not_ready")
    } else {
        None
    }
}

/// Walks the sends ahead up to where the programme ends (or the horizon).
async fn walk(
    reader: &mut Reader<'_>,
    s: &Subscription,
    pending: Option<&JobRow>,
    mut p: Position,
    n: usize,
    now: DateTime<Utc>,
) -> Result<(Steps, ProgrammeEnd)> {
    let ended = |reason| ProgrammeEnd { reason, last: None };
    let mut steps = Steps {
        n,
        listed: Vec::new(),
        count: 0,
        last: None,
    };
    if let Some(reason) = stopped(s, pending) {
        return Ok((steps, ended(reason)));
    }
    let mut t = now;
    let mut visited = HashSet::from([p.set.id]);
    if let Some(job) = pending {
        let resend = job.payload.0["resend"] == true;
        let sequence_number = if resend {
            resend_sequence_number(s)
        } else {
            p.sequence_number
        };
        let step = p.step(job.run_at.max(now), sequence_number, resend);
        t = step.sends_at;
        steps.push(step);
        if let Some(reason) = stopped(s, None).filter(|_| resend) {
            return Ok((steps, ended(reason)));
        }
        if !resend {
            match advance(reader, &mut p, &mut visited, steps.count, n).await? {
                Next::Continue => {}
                stop => return Ok(end_at(steps, stop)),
            }
        }
    }
    while steps.count < END_HORIZON {
        if p.last.is_none() {
            return Ok((steps, ended("no_messages")));
        }
        let Some(due) = p.cron.next_after_in(p.zone, t) else {
            return Ok((steps, ended("never_due")));
        };
        let step = p.step(due, p.sequence_number, false);
        t = step.sends_at;
        steps.push(step);
        match advance(reader, &mut p, &mut visited, steps.count, n).await? {
            Next::Continue => {}
            stop => return Ok(end_at(steps, stop)),
        }
    }
    Ok((steps, ended("beyond_horizon")))
}

/// What follows a send.
enum Next {
    Continue,
    /// It was the programme's last message.
    LastMessage,
    /// The `next_set` chain came back to a set already walked, with `n` sends listed.
    Loops,
}

/// Moves to the next message (or set) after a send.
async fn advance(
    reader: &mut Reader<'_>,
    p: &mut Position,
    visited: &mut HashSet<i64>,
    listed: usize,
    n: usize,
) -> Result<Next> {
    if p.last.is_some_and(|last| p.sequence_number < last) {
        p.sequence_number += 1;
        return Ok(Next::Continue);
    }
    match reader.next_set(p).await? {
        None => Ok(Next::LastMessage),
        Some(next) if visited.insert(next.set.id) || listed < n => {
            *p = next;
            Ok(Next::Continue)
        }
        Some(_) => Ok(Next::Loops),
    }
}

/// The end of a walk that stopped after its last step.
fn end_at(steps: Steps, next: Next) -> (Steps, ProgrammeEnd) {
    let end = match (next, steps.last()) {
        (Next::LastMessage, Some(last)) => ProgrammeEnd {
            reason: "last_message",
            last: Some((
                last.set.clone(),
                last.sequence_number,
                last.sends_at,
                last.zone,
                steps.count,
            )),
        },
        _ => ProgrammeEnd {
            reason: "next_set_loops",
            last: None,
        },
    };
    (steps, end)
}

async fn with_message(reader: &mut Reader<'_>, step: Step) -> Result<ForecastSend> {
    let message = sub_sql::find_message(
        reader.conn.conn(),
        step.set.id,
        step.sequence_number,
        &reader.lang,
    )
    .await?;
    let binary_path = match message.as_ref().and_then(|m| m.binary_content_id) {
        Some(binary) => content_sql::get_binary_content(reader.conn.conn(), binary)
            .await?
            .map(|b| b.path),
        None => None,
    };
    Ok(ForecastSend {
        due: step.due,
        sends_at: step.sends_at,
        zone: step.zone,
        set: step.set,
        sequence_number: step.sequence_number,
        resend: step.resend,
        message,
        binary_path,
    })
}
