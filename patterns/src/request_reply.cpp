#include "peermq/patterns/request_reply.hpp"

#include <future>
#include <map>
#include <mutex>
#include <unordered_map>

namespace peermq::patterns {
namespace {

// Replies are short-lived: a reply nobody waits for any more expires instead of piling up.
constexpr auto kReplyTtl = std::chrono::seconds(30);

// Reply queues by name, declared once per responder.
class ReplyRoutes {
public:
    explicit ReplyRoutes(Node& node) : node_(node) {}

    Result<Queue> route(const std::string& reply_to) {
        std::lock_guard lock(mutex_);
        auto it = queues_.find(reply_to);
        if (it != queues_.end()) return it->second;
        auto queue = node_.queue(reply_to, {.ttl = kReplyTtl});
        if (!queue) return queue.status();
        queues_.emplace(reply_to, queue.value());
        return queue;
    }

private:
    Node& node_;
    std::mutex mutex_;
    std::unordered_map<std::string, Queue> queues_;
};

}  // namespace

Status Responder::serve(Node& node, std::string service, Handler handler, ConsumeOptions options) {
    if (!handler) return make_error(ErrorCode::invalid_argument, "serve needs a handler");
    auto routes = std::make_shared<ReplyRoutes>(node);
    return node.consume(
        std::move(service),
        [routes, handler = std::move(handler)](Delivery& delivery) {
            const Message& request = delivery.message();
            auto reply_to = request.headers.find(kReplyToHeader);
            auto correlation = request.headers.find(kCorrelationHeader);
            if (reply_to == request.headers.end() || correlation == request.headers.end()) {
                delivery.reject("request without reply-to or correlation id");
                return;
            }
            Headers headers{{kCorrelationHeader, correlation->second}};
            Payload reply;
            try {
                reply = handler(request);
            } catch (const std::exception& e) {
                headers.emplace(kErrorHeader, e.what());
            }
            auto queue = routes->route(reply_to->second);
            if (!queue) throw std::runtime_error(queue.status().to_string());
            auto sent = queue->send_payload(std::move(reply), std::move(headers));
            if (!sent) throw std::runtime_error(sent.status().to_string());
        },
        options);
}

struct Requester::State {
    std::string reply_queue;
    std::mutex mutex;
    std::map<std::string, std::promise<Result<Payload>>> pending;  // by correlation id
    std::mutex queues_mutex;
    std::unordered_map<std::string, Queue> services;
};

Result<Requester> Requester::create(Node& node) {
    auto state = std::make_shared<State>();
    state->reply_queue = "peermq.reply." + node.id().to_string();
    Status consuming = node.consume(state->reply_queue, [state](Delivery& delivery) {
        const Message& reply = delivery.message();
        auto correlation = reply.headers.find(kCorrelationHeader);
        if (correlation == reply.headers.end()) return;
        std::promise<Result<Payload>> promise;
        {
            std::lock_guard lock(state->mutex);
            auto it = state->pending.find(correlation->second);
            if (it == state->pending.end()) return;  // late: its caller gave up
            promise = std::move(it->second);
            state->pending.erase(it);
        }
        if (auto error = reply.headers.find(kErrorHeader); error != reply.headers.end()) {
            promise.set_value(make_error(ErrorCode::internal, "service failed: " + error->second));
        } else {
            promise.set_value(reply.payload);
        }
    });
    if (!consuming.ok()) return consuming;
    return Requester(node, std::move(state));
}

const std::string& Requester::reply_queue() const noexcept { return state_->reply_queue; }

Result<Payload> Requester::call(const std::string& service, Payload payload,
                                std::chrono::milliseconds timeout) {
    Queue* queue = nullptr;
    {
        std::lock_guard lock(state_->queues_mutex);
        auto it = state_->services.find(service);
        if (it == state_->services.end()) {
            // A request outliving its caller's patience expires rather than being served late.
            auto declared = node_->queue(service, {.ttl = timeout});
            if (!declared) return declared.status();
            it = state_->services.emplace(service, declared.value()).first;
        }
        queue = &it->second;
    }
    const std::string correlation = Uuid::generate().to_string();
    auto future = [&] {
        std::lock_guard lock(state_->mutex);
        return state_->pending[correlation].get_future();
    }();
    auto sent = queue->send_payload(std::move(payload), {{kReplyToHeader, state_->reply_queue},
                                                         {kCorrelationHeader, correlation}});
    if (sent && future.wait_for(timeout) == std::future_status::ready) return future.get();
    {
        std::lock_guard lock(state_->mutex);
        state_->pending.erase(correlation);
    }
    if (!sent) return sent.status();
    return make_error(ErrorCode::timed_out,
                      "no reply from '" + service + "' within " + std::to_string(timeout.count()) + " ms");
}

}  // namespace peermq::patterns
