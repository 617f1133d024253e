-- The audit log (docs/security.md): who did what, when. Written in the transaction of the change
-- it records: token creation and revocation, user changes, admin actions. `actor_id` is the
-- user who acted (null for the command line or a user since deleted); `actor` names them as
-- they were at the time (an email, or `cli:<os user>`).
create table audit_log (
    id          integer primary key autoincrement,
    at          text    not null,
    actor_id    bigint  references app_user (id) on delete set null,
    actor       text    not null,
    action      text    not null,
    object_type text    not null,
    object_id   text    not null,
    -- JSON: what changed, never a token or secret
    details     text    not null default '{}'
);
create index audit_log_action_idx on audit_log (action, id);
create index audit_log_actor_idx on audit_log (actor_id, id);
