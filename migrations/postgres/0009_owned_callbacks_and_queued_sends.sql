-- Step 6 (drop-in and safe).
--
-- A WebSub subscription belongs to the user who made it: another user's request for the same
-- (topic, callback) is a separate subscription of theirs, never a change of the first one's.
alter table callback drop constraint callback_topic_prefix_callback_url_key;
alter table callback add constraint callback_owner_topic_url_key
    unique (created_by, topic_prefix, callback_url);

-- A callback receives only the events committed after it became active. Commit order is not id
-- order on PostgreSQL (ids are taken at insert), so each event keeps the id of the transaction
-- that wrote it, and an activation keeps the snapshot it was made in: an event is for the
-- callback when its transaction was not yet visible to that snapshot. Events written before
-- this migration have no transaction id and count as older than every later activation;
-- callbacks activated before it (no snapshot) keep receiving everything, as they did.
alter table event add column txid xid8;
alter table event alter column txid set default pg_current_xact_id();
alter table callback add column activated_snapshot pg_snapshot;

-- Sends a user asked for while one was already waiting or running: each becomes a send job
-- when the one before it has finished (at most one send per subscription waits or runs).
alter table subscription add column queued_sends integer not null default 0;
