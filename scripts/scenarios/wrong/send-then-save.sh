#!/usr/bin/env bash
# Wrong way: send, then save (PLACEMENT=send-then-save). order-service publishes OrderCreated as a
# plain message, visible at once, then writes the order. fail-local-tx makes the write fail: the
# answer is 500 "not placed", yet cart-service has already taken the items off the cart for an
# order that does not exist. The checker reports a phantom (I2).
# The right way, same fault: the event was a half message, invisible until the local outcome; the
# rollback drops it and nothing happens anywhere.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrong_way send-then-save fail-local-tx phantom
right_way fail-local-tx no
