// Package ordertest is the stand-in for the RocketMQ transactional producer that the tests of
// package order and of the HTTP API share.
package ordertest

import (
	"context"
	"slices"
	"sync"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Producer "stores" each half message and calls ExecuteLocalTransaction on the caller's goroutine,
// like the real client; it never commits anything anywhere. Set its fields before the first send.
type Producer struct {
	Listener primitive.TransactionListener
	SendErr  error                // the half message is refused with this error
	Status   primitive.SendStatus // the broker answers with this; the zero value is SendOK
	// Before, if set, runs after the half message is "stored" and before the listener, with the
	// order ID: tests put a check-back or a row lock in the local transaction's way there.
	Before func(ctx context.Context, orderID string)

	mu      sync.Mutex
	sent    []*primitive.Message
	answers []primitive.LocalTransactionState
}

// SendMessageInTransaction implements order.Producer.
func (p *Producer) SendMessageInTransaction(ctx context.Context, msg *primitive.Message) (*primitive.TransactionSendResult, error) {
	if p.SendErr != nil {
		return nil, p.SendErr
	}
	p.mu.Lock()
	p.sent = append(p.sent, msg)
	p.mu.Unlock()
	res := &primitive.TransactionSendResult{SendResult: &primitive.SendResult{Status: p.Status, MsgID: "fake"}}
	if p.Status != primitive.SendOK {
		// Not stored: the real client rolls back without calling the listener.
		res.State = primitive.RollbackMessageState
		return res, nil
	}
	if p.Before != nil {
		p.Before(ctx, msg.GetKeys())
	}
	res.State = p.Listener.ExecuteLocalTransaction(msg)
	p.mu.Lock()
	p.answers = append(p.answers, res.State)
	p.mu.Unlock()
	return res, nil
}

// Sent returns the half messages sent so far, in order.
func (p *Producer) Sent() []*primitive.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// Counts returns how many half messages were sent, and the listener's answer to each one it was
// called for.
func (p *Producer) Counts() (sent int, answers []primitive.LocalTransactionState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent), slices.Clone(p.answers)
}
