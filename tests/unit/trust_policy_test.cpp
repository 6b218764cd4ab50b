// TrustPolicy: what each trust mode admits, how a changed authorized_keys file is told apart
// (revoked, changed, kept), that a file that cannot be read keeps the keys in force, and that
// tofu's pins are written and read back. Real files in a temporary directory.
#include "security/trust_policy.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "peermq/keys.hpp"
#include "support/temp_dir.hpp"

namespace peermq::detail {
namespace {

using testing::TempDir;

struct Key {
    std::string text = generate_key_pair().value().public_key;
    CurveKey bytes = decode_key(text).value();
};

void write_file(const std::string& path, const std::string& text) {
    const std::string temporary = path + ".new";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << text;
    }
    ::chmod(temporary.c_str(), 0600);
    std::filesystem::rename(temporary, path);
}

TrustPolicy authorized_policy(const std::string& path) {
    return TrustPolicy::load({TrustMode::authorized, path, {}}).value();
}

TEST(TrustPolicy, OpenAdmitsEveryKeyAndRestrictsNothing) {
    auto policy = TrustPolicy::load({TrustMode::open, {}, {}}).value();
    Key key;
    EXPECT_TRUE(policy.admits(key.bytes));
    EXPECT_EQ(policy.permissions(key.bytes), nullptr);
    EXPECT_EQ(policy.check_pin("anyone", key.bytes), TrustPolicy::Pin::matches);
    EXPECT_FALSE(policy.reload_if_changed().reloaded);
}

TEST(TrustPolicy, AuthorizedAdmitsOnlyListedKeysWithTheirPermissions) {
    TempDir dir;
    Key worker, stranger;
    write_file(dir.file("keys"), worker.text + " worker consume=jobs\n");
    auto policy = authorized_policy(dir.file("keys"));
    EXPECT_TRUE(policy.admits(worker.bytes));
    EXPECT_FALSE(policy.admits(stranger.bytes));
    ASSERT_NE(policy.permissions(worker.bytes), nullptr);
    EXPECT_TRUE(policy.permissions(worker.bytes)->may_consume("jobs"));
    EXPECT_FALSE(policy.permissions(worker.bytes)->may_consume("payments"));
    EXPECT_EQ(policy.entry(worker.bytes)->name, "worker");
}

TEST(TrustPolicy, AnUnchangedFileIsNotReadAgain) {
    TempDir dir;
    Key worker;
    write_file(dir.file("keys"), worker.text + " worker\n");
    auto policy = authorized_policy(dir.file("keys"));
    const auto generation = policy.generation();
    EXPECT_FALSE(policy.reload_if_changed().reloaded);
    EXPECT_EQ(policy.generation(), generation);
}

TEST(TrustPolicy, AReloadTellsRevokedAndChangedKeysApart) {
    TempDir dir;
    Key kept, changed, removed, added;
    write_file(dir.file("keys"), kept.text + " kept\n" + changed.text + " changed send=a\n" +
                                     removed.text + " removed\n");
    auto policy = authorized_policy(dir.file("keys"));
    const auto generation = policy.generation();
    write_file(dir.file("keys"), kept.text + " kept\n" + changed.text + " changed send=b\n" +
                                     added.text + " added\n");

    const auto change = policy.reload_if_changed();
    ASSERT_TRUE(change.reloaded);
    EXPECT_TRUE(change.error.ok());
    ASSERT_EQ(change.revoked.size(), 1u);
    EXPECT_EQ(change.revoked[0], removed.bytes);
    ASSERT_EQ(change.changed.size(), 1u);
    EXPECT_EQ(change.changed[0], changed.bytes);
    EXPECT_EQ(change.keys, 3u);
    EXPECT_GT(policy.generation(), generation);
    EXPECT_FALSE(policy.admits(removed.bytes));
    EXPECT_TRUE(policy.admits(added.bytes));
    EXPECT_TRUE(policy.permissions(changed.bytes)->may_send("b"));
}

TEST(TrustPolicy, AFileThatCannotBeReadKeepsTheKeysInForceAndSaysWhy) {
    TempDir dir;
    Key worker;
    write_file(dir.file("keys"), worker.text + " worker\n");
    auto policy = authorized_policy(dir.file("keys"));
    std::filesystem::remove(dir.file("keys"));
    auto change = policy.reload_if_changed();
    EXPECT_FALSE(change.reloaded);
    EXPECT_EQ(change.error.code(), ErrorCode::not_found) << change.error.to_string();
    EXPECT_TRUE(policy.admits(worker.bytes));
    // Said once per change of the file, not at every tick.
    EXPECT_TRUE(policy.reload_if_changed().error.ok());

    write_file(dir.file("keys"), worker.text + " worker\n");
    ::chmod(dir.file("keys").c_str(), 0666);
    change = policy.reload_if_changed();
    EXPECT_EQ(change.error.code(), ErrorCode::invalid_argument) << change.error.to_string();
    EXPECT_TRUE(policy.admits(worker.bytes));
}

TEST(TrustPolicy, ABadLineIsReportedAndItsKeyNotAdmitted) {
    TempDir dir;
    Key good, typo;
    write_file(dir.file("keys"), good.text + " good\n" + typo.text.substr(1) + " typo\n");
    auto policy = authorized_policy(dir.file("keys"));
    EXPECT_TRUE(policy.admits(good.bytes));
    EXPECT_FALSE(policy.admits(typo.bytes));
    ASSERT_EQ(policy.authorized().problems.size(), 1u);
    EXPECT_EQ(policy.authorized().problems[0].line, 2u);
}

TEST(TrustPolicy, AuthorizedNeedsAFile) {
    auto none = TrustPolicy::load({TrustMode::authorized, {}, {}});
    EXPECT_EQ(none.status().code(), ErrorCode::invalid_argument);
    TempDir dir;
    auto missing = TrustPolicy::load({TrustMode::authorized, dir.file("nothing"), {}});
    EXPECT_EQ(missing.status().code(), ErrorCode::not_found);
}

TEST(TrustPolicy, TofuPinsTheFirstKeyOfANameAndKeepsItOnDisk) {
    TempDir dir;
    Key first, second;
    const std::string pins = dir.file("known_keys");
    {
        auto policy = TrustPolicy::load({TrustMode::tofu, {}, pins}).value();
        EXPECT_TRUE(policy.admits(second.bytes));  // tofu refuses names, not keys
        EXPECT_EQ(policy.check_pin("worker", first.bytes), TrustPolicy::Pin::pinned);
        EXPECT_TRUE(policy.pin_write_error().ok()) << policy.pin_write_error().to_string();
        EXPECT_EQ(policy.check_pin("worker", first.bytes), TrustPolicy::Pin::matches);
        EXPECT_EQ(policy.check_pin("worker", second.bytes), TrustPolicy::Pin::changed);
        EXPECT_EQ(policy.check_pin("other", second.bytes), TrustPolicy::Pin::pinned);
    }
    struct stat st {};
    ASSERT_EQ(::stat(pins.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    auto again = TrustPolicy::load({TrustMode::tofu, {}, pins}).value();
    EXPECT_EQ(again.check_pin("worker", second.bytes), TrustPolicy::Pin::changed);
    EXPECT_EQ(again.check_pin("worker", first.bytes), TrustPolicy::Pin::matches);
    ASSERT_NE(again.pinned_key("other"), nullptr);
    EXPECT_EQ(*again.pinned_key("other"), second.bytes);
}

TEST(TrustPolicy, TofuWithoutAFilePinsForThisRunOnly) {
    Key first, second;
    auto policy = TrustPolicy::load({TrustMode::tofu, {}, {}}).value();
    EXPECT_EQ(policy.check_pin("worker", first.bytes), TrustPolicy::Pin::pinned);
    EXPECT_EQ(policy.check_pin("worker", second.bytes), TrustPolicy::Pin::changed);
}

}  // namespace
}  // namespace peermq::detail
