// Mailbox: the command pipe into the actor. Any thread pushes; only the actor drains.
//
// An eventfd wakes the actor's zmq_poll, and only when the mailbox goes from empty to non-empty,
// so a burst of sends costs one wake-up and the actor takes the whole batch with one swap. (An
// inproc ZeroMQ pair would need one socket per sending thread.)
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <vector>

#include "util/spin_lock.hpp"

namespace peermq::detail {

template <typename T>
class Mailbox {
public:
    Mailbox() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    ~Mailbox() { ::close(fd_); }
    Mailbox(const Mailbox&) = delete;
    Mailbox& operator=(const Mailbox&) = delete;

    void push(T item) {
        bool wake;
        {
            SpinLockGuard lock(mutex_);
            wake = items_.empty();
            items_.push_back(std::move(item));
        }
        if (wake) signal();
    }

    // Takes everything queued. Reads the eventfd before swapping, so a push racing with the
    // drain either lands in this batch or signals again.
    void drain(std::vector<T>& out) {
        std::uint64_t value;
        [[maybe_unused]] auto n = ::read(fd_, &value, sizeof value);
        out.clear();
        SpinLockGuard lock(mutex_);
        out.swap(items_);
    }

    int fd() const noexcept { return fd_; }

private:
    void signal() {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
    }

    int fd_;
    SpinLock mutex_;
    std::vector<T> items_ PEERMQ_GUARDED_BY(mutex_);
};

}  // namespace peermq::detail
