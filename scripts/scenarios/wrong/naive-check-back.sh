#!/usr/bin/env bash
# Wrong way: the naive check-back (PLACEMENT=naive-check-back) answers "order row exists -> commit,
# else rollback", without the tx_log barrier. Two faults on one order: slow-local-tx=8 holds the
# local transaction open past the broker's check (3-5 s here), and skip-end-transaction loses the
# producer's own commit. The check's plain SELECT does not wait for the open transaction: it sees
# no row and answers rollback; the order then commits, and nothing is left for the broker to ask
# about. The checker reports the order as missing from the cart (I1, a lost event).
# (slow-local-tx alone does not break it on RocketMQ 5.3.3: the broker still honours the
# producer's late commit of the original half message.)
# The right way, same faults: the check-back's INSERT IGNORE on tx_log waits for the row lock, then
# reads 'committed' and answers commit: the event is delivered without the producer's commit.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrong_way naive-check-back slow-local-tx=8,skip-end-transaction lost rollback 1
right_way slow-local-tx=8,skip-end-transaction yes
