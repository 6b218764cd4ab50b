#include "peermq/status.hpp"

namespace peermq {

std::string_view to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::ok: return "ok";
        case ErrorCode::invalid_argument: return "invalid_argument";
        case ErrorCode::address_in_use: return "address_in_use";
        case ErrorCode::unknown_interface: return "unknown_interface";
        case ErrorCode::io_error: return "io_error";
        case ErrorCode::timed_out: return "timed_out";
        case ErrorCode::would_block: return "would_block";
        case ErrorCode::closed: return "closed";
        case ErrorCode::queue_full: return "queue_full";
        case ErrorCode::corrupt_journal: return "corrupt_journal";
        case ErrorCode::disk_full: return "disk_full";
        case ErrorCode::protocol_error: return "protocol_error";
        case ErrorCode::not_found: return "not_found";
        case ErrorCode::unavailable: return "unavailable";
        case ErrorCode::in_use: return "in_use";
        case ErrorCode::permission_denied: return "permission_denied";
        case ErrorCode::internal: return "internal";
    }
    return "unknown";
}

std::string Status::to_string() const {
    if (ok()) return "ok";
    std::string text(peermq::to_string(code_));
    if (!message_.empty()) {
        text += ": ";
        text += message_;
    }
    return text;
}

}  // namespace peermq
