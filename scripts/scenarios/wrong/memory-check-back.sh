#!/usr/bin/env bash
# Wrong way: the in-memory check-back (PLACEMENT=memory-check-back) answers from a map of local
# outcomes kept in the process, and, like RocketMQ's own example, answers commit for an order it
# does not know. crash-after-half kills instance 1 after the half message, before the order is
# written; it restarts with an empty map, and whichever instance the broker asks answers commit:
# cart-service applies an order that was never written. The checker reports a phantom (I2).
# The right way, same fault: the check-back finds no tx_log row in the database, claims the order
# ID as rolled back and answers rollback: no order, no cart change.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RESTART=1 wrong_way memory-check-back crash-after-half phantom commit 1
right_way crash-after-half no
