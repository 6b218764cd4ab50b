// Status and Result<T>: how every runtime operation of peermq reports failure.
//
// Value types, cheap to move, safe to use from any thread. "Would block" and "timed out" are
// ordinary results here, not exceptions. Result<T>::value() throws BadResultAccess when it holds
// an error, like absl::StatusOr, so `Node::create(...).value()` is the one-line happy path.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace peermq {

enum class ErrorCode {
    ok = 0,
    invalid_argument,   // bad options or arguments
    address_in_use,     // a configured port is taken
    unknown_interface,  // the named network interface does not exist or has no IPv4 address
    io_error,           // a socket or file operation failed
    timed_out,          // a deadline passed
    would_block,        // the operation would have to wait and was asked not to
    closed,             // the node was stopped
    queue_full,         // a queue's max length was reached under the `reject` policy
    corrupt_journal,    // the journal file is not a readable peermq journal
    disk_full,          // the journal could not be written for lack of space
    protocol_error,     // a peer broke the wire protocol
    not_found,          // no such message, peer or record
    unavailable,        // a service (avahi-daemon, D-Bus) does not answer
    in_use,             // a data directory is held by another running node
    permission_denied,  // the peer refused this key (a control client's key not admitted)
    internal,
};

std::string_view to_string(ErrorCode code) noexcept;

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok_status() { return {}; }

    bool ok() const noexcept { return code_ == ErrorCode::ok; }
    explicit operator bool() const noexcept { return ok(); }
    ErrorCode code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    // "invalid_argument: name must not be empty"
    std::string to_string() const;

private:
    ErrorCode code_ = ErrorCode::ok;
    std::string message_;
};

inline Status make_error(ErrorCode code, std::string message) {
    return Status(code, std::move(message));
}

class BadResultAccess : public std::runtime_error {
public:
    explicit BadResultAccess(const Status& status)
        : std::runtime_error(status.to_string()), status_(status) {}
    const Status& status() const noexcept { return status_; }

private:
    Status status_;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : data_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
    Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
        if (std::get<Status>(data_).ok()) {
            data_ = Status(ErrorCode::internal, "Result built from an ok Status without a value");
        }
    }

    bool ok() const noexcept { return std::holds_alternative<T>(data_); }
    explicit operator bool() const noexcept { return ok(); }

    const Status& status() const noexcept {
        static const Status kOk;
        return ok() ? kOk : std::get<Status>(data_);
    }

    T& value() & {
        check();
        return std::get<T>(data_);
    }
    const T& value() const& {
        check();
        return std::get<T>(data_);
    }
    T&& value() && {
        check();
        return std::get<T>(std::move(data_));
    }

    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

private:
    void check() const {
        if (!ok()) throw BadResultAccess(std::get<Status>(data_));
    }
    std::variant<T, Status> data_;
};

}  // namespace peermq
