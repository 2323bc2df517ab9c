module rmqtx/cart-service

go 1.26.0

require rmqtx/pkg v0.0.0

replace rmqtx/pkg => ../pkg
