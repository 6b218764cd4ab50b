// A journal on a full disk, then close (issue: "disk full, then close(), loses silently"). The
// data directory is a real 2 MiB tmpfs: send() fills it until the journal refuses, then the node
// closes. flush_and_close() must say how many messages it could not keep, and that number must
// be exact: what send() accepted = what is on disk + what close() reported lost. With fsync_each
// every send() that returned is on disk.
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "fault_support.hpp"
#include "storage/journal.hpp"

namespace peermq::fault {
namespace {

// A tmpfs of `size` mounted on a directory of its own; unmounted at the end.
class SmallDisk {
public:
    explicit SmallDisk(const std::string& size) {
        path_ = dir_.file("disk");
        std::filesystem::create_directory(path_);
        const std::string options = "size=" + size + ",mode=0700";
        if (::mount("peermq-test", path_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
            error_ = std::strerror(errno);
        } else {
            mounted_ = true;
        }
    }
    ~SmallDisk() {
        if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    }
    SmallDisk(const SmallDisk&) = delete;
    SmallDisk& operator=(const SmallDisk&) = delete;

    bool mounted() const { return mounted_; }
    const std::string& error() const { return error_; }
    std::string data_dir() const { return path_ + "/data"; }

private:
    TempDir dir_;
    std::string path_;
    bool mounted_ = false;
    std::string error_;
};

struct Filled {
    std::uint64_t accepted = 0;     // send() returned an id
    Status first_error;             // the first send() that did not
    std::uint64_t uncommitted = 0;  // NodeStats::uncommitted then
    Status closed;                  // flush_and_close()
};

// Sends 200-byte messages to a queue nobody consumes until send() fails, then closes.
Filled fill_and_close(const std::string& data_dir, Durability durability) {
    NodeOptions options;
    options.name = "full-disk";
    options.interface = "lo";
    options.data_dir = data_dir;
    options.durability = durability;
    options.control_endpoint = "off";
    Filled out;
    auto node = Node::create(options);
    EXPECT_TRUE(node.ok()) << node.status().to_string();
    if (!node.ok()) return out;
    QueueOptions queue;
    queue.max_length = 1'000'000;
    queue.block_timeout = 2s;
    auto q = node.value().queue("jobs", queue);
    EXPECT_TRUE(q.ok()) << q.status().to_string();
    if (!q.ok()) return out;
    const std::string payload(200, 'x');
    for (std::uint64_t i = 0; i < 2'000'000; ++i) {
        auto sent = q.value().send(payload);
        if (!sent.ok()) {
            out.first_error = sent.status();
            break;
        }
        ++out.accepted;
    }
    out.uncommitted = node.value().stats().uncommitted;
    out.closed = node.value().flush_and_close(300ms);
    return out;
}

std::uint64_t on_disk(const std::string& data_dir) {
    auto journal = detail::Journal::open(data_dir, Durability::group_commit,
                                         detail::JournalOpenMode::existing);
    EXPECT_TRUE(journal.ok()) << journal.status().to_string();
    if (!journal.ok()) return 0;
    auto count = journal.value()->outbox_count();
    EXPECT_TRUE(count.ok()) << count.status().to_string();
    return count.ok() ? count.value() : 0;
}

// "N messages handed to send() were not written ..." → N.
std::uint64_t reported_lost(const Status& status) {
    return std::stoull(status.message().substr(0, status.message().find(' ')));
}

TEST(DiskFull, CloseSaysExactlyHowManyAcceptedMessagesItCouldNotKeep) {
    SmallDisk disk("2m");
    if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << disk.error();
    const Filled run = fill_and_close(disk.data_dir(), Durability::group_commit);
    ASSERT_FALSE(run.first_error.ok());
    EXPECT_EQ(run.first_error.code(), ErrorCode::disk_full) << run.first_error.to_string();
    ASSERT_FALSE(run.closed.ok()) << "close() kept everything on a full disk?";
    EXPECT_EQ(run.closed.code(), ErrorCode::disk_full) << run.closed.to_string();
    const std::uint64_t lost = reported_lost(run.closed);
    const std::uint64_t kept = on_disk(disk.data_dir());
    std::printf(
        "disk full: %llu accepted, %llu on disk, %llu reported lost by close (%s); "
        "uncommitted before close %llu\n",
        static_cast<unsigned long long>(run.accepted), static_cast<unsigned long long>(kept),
        static_cast<unsigned long long>(lost), run.closed.to_string().c_str(),
        static_cast<unsigned long long>(run.uncommitted));
    EXPECT_EQ(kept + lost, run.accepted) << run.closed.to_string();
    // The backlog bound holds on a full disk too: what is lost is at most what it allows.
    EXPECT_LE(lost, NodeOptions{}.max_uncommitted + 1);
    EXPECT_GT(run.uncommitted, 0u);
}

TEST(DiskFull, FsyncEachKeepsEverySendThatReturned) {
    SmallDisk disk("2m");
    if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << disk.error();
    const Filled run = fill_and_close(disk.data_dir(), Durability::fsync_each);
    ASSERT_FALSE(run.first_error.ok());
    EXPECT_EQ(run.first_error.code(), ErrorCode::disk_full) << run.first_error.to_string();
    const std::uint64_t kept = on_disk(disk.data_dir());
    std::printf("disk full, fsync_each: %llu accepted, %llu on disk; close: %s\n",
                static_cast<unsigned long long>(run.accepted),
                static_cast<unsigned long long>(kept), run.closed.to_string().c_str());
    EXPECT_EQ(kept, run.accepted);
}

}  // namespace
}  // namespace peermq::fault
