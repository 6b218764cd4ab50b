// Queue (its sends and the one admission path of every send) and DeadLetters: the two handles
// a Node gives out, over the node's shared core.
#include <future>

#include "actor/actor.hpp"
#include "node/node_core.hpp"

namespace peermq {

// -------------------------------------------------------------------------------------------------
// Queue

namespace detail {

// What every message handed to the node is checked against first (sends and publishes alike).
Status payload_fits(const NodeCore& core, const Payload& payload) {
    if (payload.size() <= core.options.max_payload_bytes) return {};
    return make_error(ErrorCode::invalid_argument, "payload of " + std::to_string(payload.size()) +
                                                       " bytes is over max_payload_bytes");
}

namespace {

// The journal's backlog bound (NodeOptions::max_uncommitted, max_commit_lag), applied like a full
// queue: reject fails at once, block and drop_oldest wait up to block_timeout (dropping a waiting
// message would not make the disk any faster).
Status wait_for_journal(NodeCore& core, QueueShared& q, const std::string& name) {
    JournalBacklog& backlog = core.backlog;
    const std::size_t max = core.options.max_uncommitted;
    if (!backlog.full(max)) return {};
    auto behind = [&](std::string_view how) {
        return "queue '" + name + "': the journal " + std::string(how) + " (" +
               std::to_string(backlog.records.load() + backlog.queued.load()) +
               " records not yet on disk; max_uncommitted " + std::to_string(max) +
               ", max_commit_lag " + std::to_string(core.options.max_commit_lag.count()) + " ms)";
    };
    if (q.overflow.load(std::memory_order_relaxed) == OverflowPolicy::reject) {
        return make_error(ErrorCode::queue_full, behind("is behind"));
    }
    const auto timeout = std::chrono::milliseconds(q.block_timeout_ms.load());
    MutexLock lock(backlog.mutex);
    backlog.waiting.fetch_add(1);
    const bool room = backlog.room.wait_for(
        lock, timeout, [&] { return !core.serving().ok() || !backlog.full(max); });
    backlog.waiting.fetch_sub(1);
    if (Status status = core.serving(); !status.ok()) return status;
    if (!room) {
        if (Status error = core.storage_error(); !error.ok()) return error;
        return make_error(ErrorCode::timed_out,
                          behind("stayed behind for " + std::to_string(timeout.count()) + " ms"));
    }
    return {};
}

// What the actor says through a promise of the send: its status, or `closed` when the node
// stopped before saying it.
Status settled(std::future<Status>& answer, const char* closed_before) {
    try {
        return answer.get();
    } catch (const std::future_error&) {
        return make_error(ErrorCode::closed, closed_before);
    }
}

// The one admission path of every send (send, send_confirmed, a dead letter's replay): the node
// serves, the journal works, the payload fits, the queue has room by its overflow policy, the
// journal keeps up; then the message goes to the actor. A replay returns once the actor took its
// letter; for fsync_each the call returns once the message is on disk.
Result<MessageId> admit(NodeCore& core, std::uint32_t index, const std::string& name,
                        Payload payload, Headers headers, ReceiptPromise receipt,
                        std::optional<MessageId> replay_of = std::nullopt) {
    if (Status status = core.serving(); !status.ok()) return status;
    if (Status error = core.storage_error(); !error.ok()) return error;
    if (Status fits = payload_fits(core, payload); !fits.ok()) return fits;
    QueueShared& q = *core.queue_shared(index);
    const std::size_t max = q.max_length.load(std::memory_order_relaxed);
    if (q.outstanding.load(std::memory_order_acquire) >= max) {
        switch (q.overflow.load(std::memory_order_relaxed)) {
            case OverflowPolicy::reject:
                return make_error(ErrorCode::queue_full, "queue '" + name +
                                                             "' holds its max_length of " +
                                                             std::to_string(max) + " messages");
            case OverflowPolicy::block: {
                MutexLock lock(q.mutex);
                const auto timeout = std::chrono::milliseconds(q.block_timeout_ms.load());
                const bool room = q.room.wait_for(lock, timeout, [&] {
                    return !core.serving().ok() ||
                           q.outstanding.load(std::memory_order_acquire) < max;
                });
                if (Status status = core.serving(); !status.ok()) return status;
                if (!room) {
                    return make_error(ErrorCode::timed_out,
                                      "queue '" + name + "' stayed full for " +
                                          std::to_string(timeout.count()) + " ms");
                }
                break;
            }
            case OverflowPolicy::drop_oldest: break;
        }
    }
    const bool journaled = q.journaled.load(std::memory_order_relaxed);
    if (journaled) {
        if (Status behind = wait_for_journal(core, q, name); !behind.ok()) return behind;
        core.backlog.queued.fetch_add(1, std::memory_order_acq_rel);
    }
    q.outstanding.fetch_add(1, std::memory_order_acq_rel);
    SendCmd cmd;
    cmd.backlogged = journaled;
    cmd.queue = index;
    cmd.id = MessageId::generate();
    cmd.payload = std::move(payload);
    cmd.headers = std::move(headers);
    cmd.created_ms = core.clock->unix_ms();
    cmd.receipt = std::move(receipt);
    const MessageId id = cmd.id;
    std::future<Status> replayed;
    if (replay_of) {
        cmd.replay_of = replay_of;
        cmd.replayed = std::make_shared<std::promise<Status>>();
        replayed = cmd.replayed->get_future();
    }
    std::future<Status> durable;
    if (q.journaled_each.load(std::memory_order_relaxed)) {
        cmd.durable = std::make_shared<std::promise<Status>>();
        durable = cmd.durable->get_future();
    }
    core.post(std::move(cmd));
    if (replayed.valid()) {
        Status taken = settled(replayed, "the node closed before the dead letter was replayed");
        if (!taken.ok()) return taken;
    }
    if (durable.valid()) {
        Status stored = settled(durable, "the node closed before the message was stored");
        if (!stored.ok()) return stored;
    }
    return id;
}

}  // namespace

Result<MessageId> replay_dead_letter(NodeCore& core, const MessageId& id,
                                     const std::string& queue) {
    auto letter = core.call<DeadLetter>([id](Actor& actor) { return actor.dead_letter_get(id); });
    if (!letter) return letter.status();
    const std::string target = queue.empty() ? letter.value().queue : queue;
    auto index = core.find_or_declare_queue(target, QueueOptions{});
    if (!index) return index.status();
    Headers headers = std::move(letter.value().headers);
    headers.insert_or_assign("peermq-replayed-from", id.to_string());
    return admit(core, index.value(), target, std::move(letter.value().payload), std::move(headers),
                 nullptr, id);
}

}  // namespace detail

Result<MessageId> Queue::send_payload(Payload payload, Headers headers) {
    if (!core_) return make_error(ErrorCode::closed, "the node is closed");
    return detail::admit(*core_, index_, name_, std::move(payload), std::move(headers), nullptr);
}

std::future<Result<Receipt>> Queue::send_payload_confirmed(Payload payload, Headers headers) {
    auto fail = [](Status status) {
        std::promise<Result<Receipt>> failed;
        failed.set_value(std::move(status));
        return failed.get_future();
    };
    if (!core_) return fail(make_error(ErrorCode::closed, "the node is closed"));
    if (!core_->queue_shared(index_)->reliable.load()) {
        return fail(make_error(ErrorCode::invalid_argument,
                               "send_confirmed needs an at_least_once or effectively_once queue"));
    }
    auto receipt = std::make_shared<std::promise<Result<Receipt>>>();
    auto future = receipt->get_future();
    auto admitted = detail::admit(*core_, index_, name_, std::move(payload), std::move(headers),
                                  std::move(receipt));
    if (!admitted) return fail(admitted.status());
    return future;
}

Status Queue::flush(std::chrono::milliseconds timeout) {
    if (Status status = detail::serving(core_); !status.ok()) return status;
    auto done = std::make_shared<std::promise<Status>>();
    auto future = done->get_future();
    core_->post(detail::FlushCmd{std::move(done)});
    if (future.wait_for(timeout) != std::future_status::ready) {
        return make_error(ErrorCode::timed_out,
                          "flush did not finish within " + std::to_string(timeout.count()) + " ms");
    }
    try {
        return future.get();
    } catch (const std::future_error&) {
        return make_error(ErrorCode::closed, "the node closed during flush");
    }
}

// -------------------------------------------------------------------------------------------------
// DeadLetters

Result<std::vector<DeadLetter>> DeadLetters::list(const DeadLetterFilter& filter) const {
    return core_->call<std::vector<DeadLetter>>(
        [filter](detail::Actor& actor) { return actor.dead_letter_list(filter); });
}

Result<DeadLetter> DeadLetters::get(const MessageId& id) const {
    return core_->call<DeadLetter>(
        [id](detail::Actor& actor) { return actor.dead_letter_get(id); });
}

Result<std::size_t> DeadLetters::purge(const DeadLetterFilter& filter) {
    return core_->call<std::size_t>(
        [filter](detail::Actor& actor) { return actor.dead_letter_purge(filter); });
}

Result<MessageId> DeadLetters::replay(const MessageId& id, const std::string& queue) {
    return detail::replay_dead_letter(*core_, id, queue);
}

}  // namespace peermq
