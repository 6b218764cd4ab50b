// A producer's journal damaged on disk while the producer is down (docs/spec/journal.md §8,
// guarantees.md "damaged journal"; issue #12 items 3-6): the restarted node refuses to start
// with corrupt_journal naming the file and what is missing, instead of silently sending less;
// `peermq doctor --data-dir` says the same and how to go on; once the loss is accepted the node
// starts and delivers what is left. A stored payload with flipped bytes is never delivered: it
// becomes a dead letter with reason `corrupt`. A read-only journal fails Node::create.
#include <sys/stat.h>

#include "fault_support.hpp"
#include "storage/journal.hpp"
#include "support/journal.hpp"

namespace peermq::fault {
namespace {

const std::string kQueue = "jobs";
constexpr std::uint64_t kMessages = 5000;

// A producer process sends kMessages with no consumer anywhere, flush() confirms them, and it is
// SIGKILLed (or stopped cleanly): its journal holds all of them.
void produce_and_end(const std::string& data_dir, bool kill) {
    TestNode producer({"--name", "producer", "--interface", "lo", "--data-dir", data_dir,
                       "--produce", kQueue, "--count", std::to_string(kMessages)});
    ASSERT_TRUE(producer.ready());
    ASSERT_TRUE(producer.process().read_line("FLUSHED " + std::to_string(kMessages), 60s));
    if (!kill) {
        ASSERT_EQ(producer.stop(), 0);
        return;
    }
    producer.kill(SIGKILL);
    const auto status = producer.process().wait();
    ASSERT_EQ(status, 128 + SIGKILL);
}

// A node started on `data_dir` must refuse: exit 1, corrupt_journal naming the file and `what`.
void expect_start_refused(const std::string& data_dir, const std::string& what) {
    const auto started =
        run_process(driver_argv("node") + Args{"--name", "producer-again", "--interface", "lo",
                                               "--data-dir", data_dir},
                    30s);
    EXPECT_EQ(started.exit_code, 1) << "the node started on the damaged journal:\n"
                                    << started.output;
    EXPECT_NE(started.output.find("corrupt_journal"), std::string::npos) << started.output;
    EXPECT_NE(started.output.find(data_dir + "/peermq.db"), std::string::npos) << started.output;
    EXPECT_NE(started.output.find(what), std::string::npos) << started.output;
}

#ifdef PEERMQ_CLI
// `peermq doctor --data-dir` names the problem and the way out; with --accept-journal-loss it
// takes that way, after which it finds nothing wrong.
void doctor_then_accept_loss(const std::string& data_dir) {
    const auto doctor = run_process({PEERMQ_CLI, "doctor", "--data-dir", data_dir}, 30s);
    EXPECT_EQ(doctor.exit_code, 1) << doctor.output;
    EXPECT_NE(doctor.output.find("PROBLEM"), std::string::npos) << doctor.output;
    EXPECT_NE(doctor.output.find("missing"), std::string::npos) << doctor.output;
    EXPECT_NE(doctor.output.find("--accept-journal-loss"), std::string::npos) << doctor.output;
    const auto accepted =
        run_process({PEERMQ_CLI, "doctor", "--data-dir", data_dir, "--accept-journal-loss"}, 30s);
    ASSERT_EQ(accepted.exit_code, 0) << accepted.output;
    const auto again = run_process({PEERMQ_CLI, "doctor", "--data-dir", data_dir}, 30s);
    EXPECT_EQ(again.exit_code, 0) << again.output;
}
#endif

// What is left is delivered once each by the producer restarted with a consumer.
void expect_survivors_delivered(const std::string& data_dir, std::size_t survivors) {
    CountingConsumer consumer(kQueue);
    TestNode restarted(Args{"--name", "producer-again", "--interface", "lo", "--data-dir", data_dir,
                            "--peer", host_port(consumer.endpoint())} +
                       liveness_args());
    ASSERT_TRUE(restarted.ready());
    if (survivors > 0) {
        EXPECT_TRUE(restarted.wait_stat(kQueue + ".acked", survivors, 60s))
            << "acked " << restarted.stat(kQueue + ".acked").value_or(0) << " of " << survivors;
    }
    EXPECT_EQ(restarted.stop(), 0);
    const auto received = consumer.received();
    EXPECT_EQ(received.size(), survivors);
    for (const auto& [v, n] : received) EXPECT_EQ(n, 1) << v;
}

struct WalCase {
    const char* name;
    double where;  // fraction of the WAL's committed frames before the damaged one
};
void PrintTo(const WalCase& c, std::ostream* out) { *out << c.name; }

class WalDamageTest : public ::testing::TestWithParam<WalCase> {};

TEST_P(WalDamageTest, ANodeRefusesAJournalWhoseWalLostCommitsUntilTheLossIsAccepted) {
    TempDir dir;
    const std::string data_dir = dir.file("producer-data");
    produce_and_end(data_dir, /*kill=*/true);
    const std::string wal = data_dir + "/peermq.db-wal";
    const auto extent = wal_extent(wal);
    ASSERT_GE(extent.commit_frames, 2u) << "the WAL holds too little to damage";
    const auto last_commit = (extent.committed_end - 32) / (24 + extent.page_size) - 1;
    const auto frame =
        static_cast<std::uint64_t>(GetParam().where * static_cast<double>(last_commit));
    flip_byte(wal, extent.frame_offset(frame) + 24 + extent.page_size / 2);

    expect_start_refused(data_dir, "missing");
#ifdef PEERMQ_CLI
    doctor_then_accept_loss(data_dir);
    const std::size_t survivors = outbox_of(data_dir).size();
    EXPECT_LT(survivors, kMessages);
    RecordProperty("survivors", static_cast<int>(survivors));
    expect_survivors_delivered(data_dir, survivors);
#endif
}

INSTANTIATE_TEST_SUITE_P(Where, WalDamageTest,
                         ::testing::Values(WalCase{"first_frame", 0.0}, WalCase{"midway", 0.5}),
                         [](const auto& info) { return std::string(info.param.name); });

struct EmptyCase {
    const char* name;
    bool remove;  // delete peermq.db, else cut it to 0 bytes
    const char* said;
};
void PrintTo(const EmptyCase& c, std::ostream* out) { *out << c.name; }

class LostDatabaseTest : public ::testing::TestWithParam<EmptyCase> {};

TEST_P(LostDatabaseTest, AUsedDataDirWithoutItsDatabaseIsAnErrorNotAFreshStart) {
    TempDir dir;
    const std::string data_dir = dir.file("producer-data");
    produce_and_end(data_dir, /*kill=*/false);
    const std::string db = data_dir + "/peermq.db";
    ASSERT_FALSE(std::filesystem::exists(db + "-wal"));
    if (GetParam().remove) {
        std::filesystem::remove(db);
    } else {
        std::filesystem::resize_file(db, 0);
    }

    expect_start_refused(data_dir, GetParam().said);
#ifdef PEERMQ_CLI
    doctor_then_accept_loss(data_dir);
    expect_survivors_delivered(data_dir, 0);
#endif
}

INSTANTIATE_TEST_SUITE_P(How, LostDatabaseTest,
                         ::testing::Values(EmptyCase{"emptied", false, "empty"},
                                           EmptyCase{"deleted", true, "missing"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CorruptRecordTest, APayloadWithFlippedBytesIsDeadLetteredAsCorruptAndNeverDelivered) {
    TempDir dir;
    auto producer_options = node_options("producer");
    producer_options.data_dir = dir.file("producer-data");
    constexpr int kCount = 100;
    constexpr int kDamaged = 42;
    auto text = [](int i) {
        char head[32];
        std::snprintf(head, sizeof head, "message-%04d-", i);
        return std::string(head) + std::string(200, static_cast<char>('a' + i % 26));
    };
    MessageId damaged_id;
    {
        auto producer = make_node(producer_options);
        auto queue = producer.queue(kQueue).value();
        for (int i = 0; i < kCount; ++i) {
            auto id = queue.send(text(i));
            ASSERT_TRUE(id.ok()) << id.status().to_string();
            if (i == kDamaged) damaged_id = *id;
        }
        ASSERT_TRUE(queue.flush().ok());
    }  // closed: the WAL is checkpointed into peermq.db
    const std::string db = producer_options.data_dir + "/peermq.db";
    char head[32];
    std::snprintf(head, sizeof head, "message-%04d-", kDamaged);
    const auto at = find_bytes(db, head);
    ASSERT_TRUE(at.has_value());
    for (std::uint64_t i = 50; i < 53; ++i) flip_byte(db, *at + i);

    std::mutex mutex;
    std::vector<std::string> received;
    auto consumer = make_node(node_options("consumer"));
    ASSERT_TRUE(consumer
                    .consume(kQueue,
                             [&](Delivery& d) {
                                 std::lock_guard lock(mutex);
                                 received.push_back(d.as<std::string>());
                             })
                    .ok());
    producer_options.peers = {host_port(consumer.address())};
    auto producer = make_node(producer_options);
    ASSERT_TRUE(wait_until([&] { return queue_stats(producer, kQueue).acked == kCount - 1; }, 30s))
        << describe(queue_stats(producer, kQueue));
    auto letters = producer.dead_letters().list();
    ASSERT_TRUE(letters.ok()) << letters.status().to_string();
    ASSERT_EQ(letters->size(), 1u);
    EXPECT_EQ((*letters)[0].id, damaged_id);
    EXPECT_EQ((*letters)[0].reason, "corrupt");
    auto replay = producer.dead_letters().replay(damaged_id);
    EXPECT_FALSE(replay.ok()) << "a corrupt dead letter was replayed";
    producer.close();

    std::lock_guard lock(mutex);
    EXPECT_EQ(received.size(), static_cast<std::size_t>(kCount - 1));
    for (const auto& payload : received) {
        EXPECT_FALSE(payload.starts_with(head)) << "the damaged payload was delivered: " << payload;
    }
}

// The node of a data directory whose journal it cannot write fails Node::create with io_error
// naming the file (not the first flush()). Run in a child process without write access: as root,
// after handing the directory to nobody and becoming nobody.
TEST(ReadOnlyJournalTest, NodeCreateFailsWithIoErrorNamingTheFile) {
    TempDir dir;
    const std::string data_dir = dir.file("data");
    {
        auto options = node_options("producer");
        options.data_dir = data_dir;
        auto node = make_node(options);
    }
    const std::string db = data_dir + "/peermq.db";
    constexpr uid_t kNobody = 65534;
    const bool root = ::geteuid() == 0;
    if (root) {
        ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
        for (const auto& path : {data_dir, db, data_dir + "/LOCK"}) {
            ASSERT_EQ(::chown(path.c_str(), kNobody, kNobody), 0) << path;
        }
        for (const auto& entry : std::filesystem::directory_iterator(data_dir)) {
            ASSERT_EQ(::chown(entry.path().c_str(), kNobody, kNobody), 0) << entry.path();
        }
    }
    ASSERT_EQ(::chmod(db.c_str(), 0444), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (root && (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) ::_exit(9);
        auto options = node_options("producer");
        options.data_dir = data_dir;
        auto node = Node::create(options);
        if (node.ok()) ::_exit(1);
        std::fprintf(stderr, "%s\n", node.status().to_string().c_str());
        const bool named = node.status().message().find(db) != std::string::npos;
        ::_exit(node.status().code() == ErrorCode::io_error && named ? 0 : 2);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << (WEXITSTATUS(status) == 1 ? "Node::create accepted a read-only journal"
                                     : "not an io_error naming the journal file");
}

}  // namespace
}  // namespace peermq::fault
