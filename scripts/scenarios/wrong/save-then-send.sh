#!/usr/bin/env bash
# Wrong way: save, then send (PLACEMENT=save-then-send). order-service commits the order, then
# publishes OrderCreated as a plain message. crash-after-local-commit kills it in between: the
# order exists and nothing will ever send its event (the client's send retries died with the
# process). The checker reports the order as missing from the cart (I1, a lost event).
# The right way, same fault: the half message was stored before the order was written, so the
# broker checks back, the restarted instance finds tx_log 'committed', and the event is delivered.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrong_way save-then-send crash-after-local-commit lost
right_way crash-after-local-commit yes
