-- Retention (issue 19): old events, deliveries, sent integration messages and (if configured)
-- audit entries are deleted in batches by the worker's pruning pass and by `sbm prune`
-- (src/retention.rs, src/store/retention.rs). Each batch walks one of these indexes from its
-- oldest entry, so a batch reads only the rows it deletes.

-- Succeeded deliveries by when they were delivered; pending, running and failed ones are never
-- pruned, so they are not in the index.
create index delivery_delivered_idx on delivery (delivered_at) where state = 'succeeded';

-- Sent integration messages by when they were sent; waiting ones are never pruned.
create index integration_message_sent_idx on integration_message (sent_at) where sent_at is not null;

-- An event is kept while an integration message made from it waits: this answers "does one
-- wait?" per event without reading the group's whole queue.
create index integration_message_unsent_event_idx on integration_message (event_id)
    where sent_at is null;
