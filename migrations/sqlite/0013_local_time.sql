-- Same schema as migrations/postgres/0013 (see the comments there).
alter table schedule add column timezone text not null default 'UTC';
alter table subscription add column timezone text;
alter table message_set add column send_window_start text;
alter table message_set add column send_window_end text;
alter table job add column deferred_reason text;

-- SQLite cannot change a primary key in place: the tick table is rebuilt with the zone in it.
create table schedule_tick_by_zone (
    schedule_id  integer not null references schedule (id) on delete cascade,
    timezone     text    not null default 'UTC',
    minute       text    not null,
    enqueued     integer not null default 0,
    fired_at     text    not null,
    primary key (schedule_id, timezone, minute)
);
insert into schedule_tick_by_zone (schedule_id, timezone, minute, enqueued, fired_at)
    select schedule_id, 'UTC', minute, enqueued, fired_at from schedule_tick;
drop table schedule_tick;
alter table schedule_tick_by_zone rename to schedule_tick;

create index subscription_due_zone_idx on subscription (schedule_id, timezone)
    where active and not completed;
drop index subscription_due_idx;
