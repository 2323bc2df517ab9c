-- order-service schema, applied at every start (idempotent). Portable between MySQL 8.4 and
-- MariaDB 10.11: plain InnoDB tables, DATETIME(6), no engine- or version-only syntax.
-- Statements end with a semicolon at the end of a line (mysqldb.ApplySchema splits there).
-- Text compares byte for byte (utf8mb4_bin): under the servers' default case-insensitive
-- collations, SKUs 'a' and 'A' of one order would collide on order_items' primary key, and two
-- Idempotency-Keys differing only in case would count as one.

-- An order exists if and only if its local transaction committed.
CREATE TABLE IF NOT EXISTS orders (
  order_id        VARCHAR(64)  NOT NULL,
  user_id         VARCHAR(64)  NOT NULL,
  total_cents     BIGINT       NOT NULL,
  -- Idempotency-Key of the request that created it, if any. The unique key makes two concurrent
  -- requests with the same key race on the database, where exactly one wins. NULLs do not collide.
  idempotency_key VARCHAR(64)  NULL,
  request_hash    CHAR(64)     NULL,
  created_at      DATETIME(6)  NOT NULL,
  PRIMARY KEY (order_id),
  UNIQUE KEY uk_orders_idempotency (user_id, idempotency_key),
  KEY idx_orders_user_created (user_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_items (
  order_id         VARCHAR(64) NOT NULL,
  sku              VARCHAR(64) NOT NULL,
  quantity         INT         NOT NULL,
  unit_price_cents BIGINT      NOT NULL,
  PRIMARY KEY (order_id, sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The transaction barrier: one row per order ID, written by whichever comes first, the local
-- transaction (outcome 'committed', in the same transaction as the order) or the broker's
-- check-back (outcome 'rolled_back', with INSERT IGNORE). The primary key decides the race.
CREATE TABLE IF NOT EXISTS tx_log (
  order_id   VARCHAR(64) NOT NULL,
  outcome    VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (order_id),
  CONSTRAINT chk_tx_log_outcome CHECK (outcome IN ('committed', 'rolled_back'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What happened to each order's transaction, step by step, for GET /orders/{id}/timeline and the
-- web page. Written beside the flow, never deciding it: every step is written afterwards, in
-- batches (a write inside the local transaction would cost every order one more statement), and
-- may be lost with a crashing process, which is then what the timeline truthfully lacks.
-- Steps older than TIMELINE_RETENTION are purged, in batches, through idx_order_timeline_at
-- (pkg/retention adds it to a table created before it was here).
CREATE TABLE IF NOT EXISTS order_timeline (
  id       BIGINT       NOT NULL AUTO_INCREMENT,
  order_id VARCHAR(64)  NOT NULL,
  step     VARCHAR(32)  NOT NULL,
  detail   VARCHAR(255) NOT NULL,
  instance VARCHAR(128) NOT NULL,
  at       DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  KEY idx_order_timeline_order (order_id, id),
  KEY idx_order_timeline_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- PLACEMENT=outbox only: each order's OrderCreated event, written in the order's own local
-- transaction and deleted by the relay once the broker has stored it (internal/order/relay.go).
-- A row here is an event owed to the broker; the table is empty when the relay keeps up. id gives
-- the relay its order of work; the relays claim rows with SELECT ... FOR UPDATE SKIP LOCKED, so
-- no index beyond the primary key is needed.
CREATE TABLE IF NOT EXISTS outbox (
  id         BIGINT       NOT NULL AUTO_INCREMENT,
  order_id   VARCHAR(64)  NOT NULL,
  topic      VARCHAR(127) NOT NULL,
  tag        VARCHAR(64)  NOT NULL,
  -- The message's properties as JSON (traceparent, a forwarded cart fault point).
  properties TEXT         NOT NULL,
  body       MEDIUMBLOB   NOT NULL,
  -- A relay-side fault point (FAULT_INJECTION=on), cleared when it fires.
  fault      VARCHAR(32)  NOT NULL DEFAULT '',
  created_at DATETIME(6)  NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
