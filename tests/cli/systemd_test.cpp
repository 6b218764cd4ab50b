// `peermq consume` under a Type=notify systemd unit (tools/systemd/peermq-consume@.service): it
// says READY=1 through sd_notify once its node listens, and STOPPING=1 when asked to stop. The
// test plays systemd's part: a datagram socket named by NOTIFY_SOCKET.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "cli_support.hpp"
#include "support/temp_dir.hpp"

namespace peermq::cli_test {
namespace {

// What systemd's notification socket receives, one datagram at a time.
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
        bound_ = fd_ >= 0 &&
                 ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    }
    ~NotifySocket() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool bound() const { return bound_; }
    // The next datagram, or nullopt at the deadline.
    std::optional<std::string> next(std::chrono::milliseconds timeout) {
        pollfd item{fd_, POLLIN, 0};
        if (::poll(&item, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
        char buffer[4096];
        const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        if (n < 0) return std::nullopt;
        return std::string(buffer, static_cast<std::size_t>(n));
    }

private:
    std::string path_;
    int fd_ = -1;
    bool bound_ = false;
};

TEST(CliSystemdTest, ConsumeSaysReadyOnceItListensAndStoppingWhenItStops) {
    peermq::testing::TempDir dir;
    const std::string path = dir.path() + "/notify";
    NotifySocket systemd(path);
    ASSERT_TRUE(systemd.bound()) << path;
    CliProcess consumer(Args{"consume", "jobs"} + on_lo(), Args{"NOTIFY_SOCKET=" + path});
    const auto ready = systemd.next(20s);
    ASSERT_TRUE(ready) << "no READY=1 from peermq consume";
    EXPECT_NE(ready->find("READY=1"), std::string::npos) << *ready;
    EXPECT_NE(ready->find("STATUS=consuming as "), std::string::npos) << *ready;
    // Ready means listening: it has already said where.
    EXPECT_TRUE(consumer.wait_err("consuming 'jobs' as ", 5s));
    consumer.signal(SIGINT);
    const auto stopping = systemd.next(20s);
    ASSERT_TRUE(stopping) << "no STOPPING=1 from peermq consume";
    EXPECT_EQ(*stopping, "STOPPING=1");
    const CliResult result = consumer.finish(20s);
    EXPECT_EQ(result.exit_code, 0) << result;
}

}  // namespace
}  // namespace peermq::cli_test
