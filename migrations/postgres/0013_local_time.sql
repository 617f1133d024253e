-- Local time (issue 17): schedules and subscribers in IANA time zones, quiet hours per message
-- set, and ticks claimed per (schedule, zone, minute).

-- The zone a schedule's five fields are evaluated in. Existing schedules stay in UTC, so every
-- existing client sees the same due minutes as before.
alter table schedule add column timezone text not null default 'UTC';

-- A subscriber's own zone; null means the zone of the subscription's schedule.
alter table subscription add column timezone text;

-- Quiet hours: sends of this set leave only between start and end (HH:MM, in each subscriber's
-- local time; end before start crosses midnight). Both null: the configured default, if any.
alter table message_set add column send_window_start text;
alter table message_set add column send_window_end text;

-- Why a job waits past the time it was due (a send deferred to its window's next opening).
alter table job add column deferred_reason text;

-- A tick is claimed per (schedule, zone, minute): the zone is the subscribers' effective zone
-- (their own, else the schedule's) and `minute` the UTC minute the zone's local due minute
-- falls on. Every earlier claim was a UTC schedule's.
alter table schedule_tick add column timezone text not null default 'UTC';
alter table schedule_tick drop constraint schedule_tick_pkey;
alter table schedule_tick add primary key (schedule_id, timezone, minute);

-- The ticker finds a schedule's zones with a loose index scan and enqueues one zone at a time;
-- this index serves both and, led by schedule_id, every lookup the old one served.
create index subscription_due_zone_idx on subscription (schedule_id, timezone)
    where active and not completed;
drop index subscription_due_idx;
