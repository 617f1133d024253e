-- One row per (schedule, minute) the built-in scheduler fired. The primary key is what makes a
-- tick fire exactly once however many workers evaluate it, and across restarts.
create table schedule_tick (
    schedule_id  bigint      not null references schedule (id) on delete cascade,
    minute       timestamptz not null,
    enqueued     bigint      not null default 0,
    fired_at     timestamptz not null,
    primary key (schedule_id, minute)
);
