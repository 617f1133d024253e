-- A send rate shared by every process on the database (SBM_GLOBAL_SEND_RATE_LIMIT, issue 19).
-- One token bucket per limited peer ('message_sender'). A process takes a few tokens at a time
-- with one upsert (store::send_rate::take) that refills the bucket by the time elapsed on the
-- database's clock since the last take, caps it at the burst, and subtracts the grant; so the
-- processes' own clocks do not matter.
create table send_rate (
    name        text             primary key,
    -- Tokens left in the bucket after the last take (fractions are kept).
    tokens      double precision not null,
    -- When the bucket was last refilled: seconds since the Unix epoch, on the database's clock.
    refilled_at double precision not null,
    -- What the last take granted (whole tokens), for its `returning`.
    granted     bigint           not null default 0
);
