// The messages of the order pipeline: orders on the "payments" queue (orders -> payment), paid
// orders on the "inventory" queue (payment -> inventory). Encoded as MessagePack maps, so that
// `peermq dlq show` prints their fields by name.
#pragma once

#include <string>

#include <peermq/peermq.hpp>

namespace order_pipeline {

struct Order {
    int id = 0;
    std::string customer;
    std::string sku;
    int quantity = 0;
    double amount = 0;
    std::string currency;
    MSGPACK_DEFINE_MAP(id, customer, sku, quantity, amount, currency)
};

struct PaidOrder {
    Order order;
    std::string payment;  // the payment service's reference
    MSGPACK_DEFINE_MAP(order, payment)
};

}  // namespace order_pipeline
