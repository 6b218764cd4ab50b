// DataDirLock: a node's exclusive hold on its data directory (<data_dir>/LOCK), so that two
// nodes never share one journal or control socket.
//
// The lock is an open-file-description lock (fcntl F_OFD_SETLK) on the LOCK file: the kernel
// drops it when the holder closes it or dies (SIGKILL included), and, unlike flock(2), another
// process can test it without taking it (data_dir_in_use() in peermq/control.hpp). The holder's
// pid is written in the file for error messages. The LOCK file itself stays behind: removing it
// would race with a node opening it. Move-only; owns the file descriptor.
#pragma once

#include <string>

#include "peermq/status.hpp"

namespace peermq::detail {

class DataDirLock {
public:
    static constexpr const char* kFileName = "LOCK";

    // Creates the directory when absent and takes the lock; `in_use` naming the directory and
    // the holder's pid when another node holds it.
    static Result<DataDirLock> acquire(const std::string& data_dir);

    DataDirLock(DataDirLock&& other) noexcept;
    DataDirLock& operator=(DataDirLock&& other) noexcept;
    DataDirLock(const DataDirLock&) = delete;
    DataDirLock& operator=(const DataDirLock&) = delete;
    ~DataDirLock();

    void release() noexcept;

private:
    explicit DataDirLock(int fd) noexcept : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace peermq::detail
