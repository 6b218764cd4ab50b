#include "platform/data_dir_lock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "peermq/control.hpp"

namespace peermq {
namespace detail {
namespace {

namespace fs = std::filesystem;

std::string lock_path(const std::string& data_dir) {
    return (fs::path(data_dir) / DataDirLock::kFileName).string();
}

struct flock whole_file(short type) {
    struct flock lock {};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 0;  // to the end of the file, however long it grows
    lock.l_pid = 0;  // required by the OFD commands
    return lock;
}

// The pid the holder wrote, or "" when it has not written it yet.
std::string holder_pid(int fd) {
    char buffer[32] = {};
    const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
    std::string pid(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return pid;
}

}  // namespace

Result<DataDirLock> DataDirLock::acquire(const std::string& data_dir) {
    std::error_code ec;
    const auto status = fs::status(data_dir, ec);
    if (fs::exists(status) && !fs::is_directory(status)) {
        return make_error(ErrorCode::invalid_argument,
                          "data_dir " + data_dir + " exists and is not a directory");
    }
    if (!fs::exists(status)) {
        if (!fs::create_directories(data_dir, ec) && ec) {
            return make_error(ErrorCode::io_error,
                              "cannot create data_dir " + data_dir + ": " + ec.message());
        }
        // Keys, journal and control socket live here: the node's user only, whatever the umask.
        ::chmod(data_dir.c_str(), 0700);
    }
    const std::string path = lock_path(data_dir);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return make_error(ErrorCode::io_error, "cannot open " + path + ": " + std::strerror(errno));
    }
    DataDirLock lock(fd);
    struct flock request = whole_file(F_WRLCK);
    if (::fcntl(fd, F_OFD_SETLK, &request) != 0) {
        const int error = errno;
        if (error == EAGAIN || error == EACCES) {
            const std::string pid = holder_pid(fd);
            return make_error(ErrorCode::in_use,
                              "data_dir " + data_dir + " is in use by another node (" +
                                  (pid.empty() ? std::string("pid unknown") : "pid " + pid) +
                                  "); two nodes cannot share a data directory");
        }
        return make_error(ErrorCode::io_error, "cannot lock " + path + ": " + std::strerror(error));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        return make_error(ErrorCode::io_error,
                          "cannot write " + path + ": " + std::strerror(errno));
    }
    return lock;
}

DataDirLock::DataDirLock(DataDirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
    if (this != &other) {
        release();
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

DataDirLock::~DataDirLock() { release(); }

// Closing the only descriptor of the open file description drops the lock.
void DataDirLock::release() noexcept {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

}  // namespace detail

bool data_dir_in_use(const std::string& data_dir) {
    const int fd = ::open(detail::lock_path(data_dir).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct flock probe = detail::whole_file(F_WRLCK);
    const bool in_use = ::fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
    ::close(fd);
    return in_use;
}

}  // namespace peermq
