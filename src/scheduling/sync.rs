//! Jobs that keep the Seed Scheduler in step with subscriptions (compatible mode).

use serde_json::{json, Value};
use uuid::Uuid;

use crate::content::cron::{to_crontab, CronField};
use crate::jobs::{Claim, Failure, Outcome};
use crate::model::content::Schedule;
use crate::model::subscriptions::SCHEDULER_ID_KEY;
use crate::peers::Peers;
use crate::store::Db;
use crate::store::{content as content_sql, subscriptions as sql};
use crate::subscriptions;

/// What the Seed Scheduler jobs need: the database, the peers, the origin the Scheduler posts
/// back to, and the token it presents there.
pub struct SchedulerSync<'a> {
    pub db: &'a Db,
    pub peers: &'a Peers,
    pub public_origin: &'a str,
    pub inbound_token: Option<&'a str>,
}

/// `minute hour day-of-month month day-of-week`, the Scheduler's crontab order.
pub fn cron_definition(s: &Schedule) -> String {
    [
        to_crontab(CronField::Minute, &s.minute),
        to_crontab(CronField::Hour, &s.hour),
        to_crontab(CronField::DayOfMonth, &s.day_of_month),
        to_crontab(CronField::MonthOfYear, &s.month_of_year),
        to_crontab(CronField::DayOfWeek, &s.day_of_week),
    ]
    .join(" ")
}

async fn schedule_of(db: &Db, schedule_id: i64) -> Result<Schedule, Failure> {
    let mut conn = db.acquire().await?;
    content_sql::get_schedule(conn.conn(), schedule_id)
        .await?
        .ok_or_else(|| Failure::permanent(format!("schedule {schedule_id} no longer exists"), None))
}

/// Creates the subscription's Scheduler schedule and stores its id in the metadata.
pub async fn create(ctx: &SchedulerSync<'_>, claim: &Claim<'_>, subscription_id: Uuid) -> Outcome {
    let subscription = {
        let mut conn = ctx.db.acquire().await?;
        sql::get_subscription(conn.conn(), subscription_id).await?
    };
    let Some(subscription) =
        subscription.filter(|s| s.is_live() && s.scheduler_schedule_id().is_none())
    else {
        return claim.finish_alone(ctx.db).await;
    };
    let cron = cron_definition(&schedule_of(ctx.db, subscription.schedule_id).await?);
    let endpoint = format!(
        "{}/api/v1/subscriptions/{}/send",
        ctx.public_origin, subscription.id
    );
    let scheduler_id = ctx
        .peers
        .scheduler()?
        .create_schedule(&cron, &endpoint, ctx.inbound_token)
        .await?;

    let mut tx = ctx.db.begin().await?;
    let current = subscriptions::lock(&mut tx, subscription_id).await?;
    let mut metadata = current
        .metadata
        .map(|m| m.0)
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    metadata[SCHEDULER_ID_KEY] = json!(scheduler_id);
    sql::set_metadata(
        tx.conn(),
        subscription_id,
        Some(&metadata),
        crate::store::now(),
    )
    .await?;
    if claim.finish(&mut tx).await? {
        tx.commit().await?;
    }
    Ok(())
}

/// Moves the Scheduler schedule to the subscription's current schedule.
pub async fn update(
    ctx: &SchedulerSync<'_>,
    claim: &Claim<'_>,
    subscription_id: Uuid,
    scheduler_id: &str,
) -> Outcome {
    let subscription = {
        let mut conn = ctx.db.acquire().await?;
        sql::get_subscription(conn.conn(), subscription_id).await?
    };
    if let Some(subscription) = subscription {
        let cron = cron_definition(&schedule_of(ctx.db, subscription.schedule_id).await?);
        ctx.peers
            .scheduler()?
            .update_schedule(scheduler_id, &cron)
            .await?;
    }
    claim.finish_alone(ctx.db).await
}

/// Stops the subscription's Scheduler schedule.
pub async fn disable(ctx: &SchedulerSync<'_>, claim: &Claim<'_>, scheduler_id: &str) -> Outcome {
    ctx.peers
        .scheduler()?
        .disable_schedule(scheduler_id)
        .await?;
    claim.finish_alone(ctx.db).await
}
