-- A send's advance rewrites its subscription's row (next sequence number, status, updated_at)
-- and changes no indexed column, so PostgreSQL can put the new version on the same page without
-- touching the row's five index entries (a HOT update), if the page has room. Leave a tenth of
-- each page for it. New rows get the room at once; rows already written get it as vacuum frees
-- their pages (issue 19, docs/benchmarks.md).
alter table subscription set (fillfactor = 90);
