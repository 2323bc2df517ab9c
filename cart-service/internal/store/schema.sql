-- cart-service schema. Applied at every start by mysqldb.ApplySchema, so every statement must be
-- idempotent; statements end with a semicolon at the end of a line. Portable to MySQL 8.4 and
-- MariaDB 10.11: plain InnoDB tables, DATETIME(6), nothing engine- or version-specific.
--
-- Every table compares text byte for byte (utf8mb4_bin): with the servers' default
-- case-insensitive collations, SKU 'a-1' and 'A-1' would be one cart line, and order 'O1' a
-- duplicate of order 'o1'.

-- One line of a user's cart. A line exists only while its quantity is above zero.
CREATE TABLE IF NOT EXISTS cart_items (
    user_id    VARCHAR(64) NOT NULL,
    sku        VARCHAR(64) NOT NULL,
    quantity   INT         NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Orders whose OrderCreated event has been applied to a cart. The primary key is the lesson: it
-- is the business deduplication key. A redelivered event (same order ID, whatever its broker
-- message ID) fails to insert here, and the cart is left alone.
CREATE TABLE IF NOT EXISTS processed_orders (
    order_id         VARCHAR(64) NOT NULL,
    user_id          VARCHAR(64) NOT NULL,
    order_created_at DATETIME(6) NULL, -- the event's created_at; NULL if it carried none
    applied_at       DATETIME(6) NOT NULL,
    PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The cart ledger: every change of a cart line's quantity, written in the transaction that makes
-- it, so that a cart line can be explained: its quantity is the sum of quantity_after -
-- quantity_before over its rows. A change by the user (PUT or DELETE of a cart line) has no
-- order_id; an order's application writes one row per ordered SKU, with what the order asked
-- (ordered) and what was there before and after (a SKU no longer in the cart: 0 and 0). The
-- consumer never reads it; the invariant checker does (docs/design.md, I3).
CREATE TABLE IF NOT EXISTS cart_changes (
    id              BIGINT      NOT NULL AUTO_INCREMENT,
    user_id         VARCHAR(64) NOT NULL,
    sku             VARCHAR(64) NOT NULL,
    order_id        VARCHAR(64) NULL, -- NULL: a change by the user
    ordered         INT         NULL, -- the order's quantity of this SKU; NULL for a user change
    quantity_before INT         NOT NULL,
    quantity_after  INT         NOT NULL,
    at              DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Messages that can never be applied (undecodable or invalid events). They are recorded here and
-- acknowledged, so they neither block the queue nor vanish without a trace. Rows older than
-- TIMELINE_RETENTION are purged through idx_rejected_messages_at.
CREATE TABLE IF NOT EXISTS rejected_messages (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    msg_id       VARCHAR(128) NOT NULL,
    msg_key      VARCHAR(255) NOT NULL,
    reason       TEXT         NOT NULL,
    body_snippet TEXT         NOT NULL,
    rejected_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY idx_rejected_messages_at (rejected_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What each delivery of an order's event did, for people watching the technique work (GET
-- /orders/{order_id}/timeline and order-service's web page). Nothing reads it to decide anything:
-- processed_orders alone decides whether an order is applied. Steps are written afterwards, in
-- batches (a write inside the apply transaction would cost every order one more statement), and
-- may be lost with a crashing process; the applied step is then read from processed_orders.
-- TIMELINE=off writes nothing here. Rows older than TIMELINE_RETENTION are purged through
-- idx_order_deliveries_at (pkg/retention adds these indexes to tables created before them).
CREATE TABLE IF NOT EXISTS order_deliveries (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    order_id        VARCHAR(64)  NOT NULL,
    step            VARCHAR(32)  NOT NULL, -- applied, duplicate_acknowledged, retry_requested, rejected
    detail          VARCHAR(255) NOT NULL,
    reconsume_times INT          NOT NULL, -- how often the broker had delivered this message before
    msg_id          VARCHAR(128) NOT NULL,
    at              DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY idx_order_deliveries_order (order_id, id),
    KEY idx_order_deliveries_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Used only by CONSUMER=dedup-by-message-id, a consumer that is wrong on purpose (internal/cart/
-- wrong.go): its deduplication key is the broker's message ID instead of the order ID. The same
-- order published again as a new message has a new message ID and passes this key.
CREATE TABLE IF NOT EXISTS processed_messages (
    msg_id     VARCHAR(128) NOT NULL,
    order_id   VARCHAR(64)  NOT NULL,
    applied_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (msg_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Fault points that fire once per order (cart-crash-before-apply) remember here that they have
-- fired: the crash they cause makes the broker deliver the message again, and the redelivery must
-- go on rather than crash again. Written only with FAULT_INJECTION=on.
CREATE TABLE IF NOT EXISTS fault_points_fired (
    order_id VARCHAR(64) NOT NULL,
    point    VARCHAR(64) NOT NULL,
    fired_at DATETIME(6) NOT NULL,
    PRIMARY KEY (order_id, point)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
