// `peermq trust` on real authorized_keys files: add (a key alone or as a node's address, with
// permissions), list (plain and JSON, with the lines a node would skip), remove by name, and the
// refusals: a key listed already, a key that is none, a file others may write.
#ifdef PEERMQ_CLI

#include <sys/stat.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_support.hpp"
#include "peermq/keys.hpp"
#include "security/authorized_keys.hpp"

namespace peermq::cli_test {
namespace {

std::string new_key() { return generate_key_pair().value().public_key; }

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class TrustCli : public ::testing::Test {
protected:
    CliResult trust(std::vector<std::string> args) {
        args.insert(args.begin(), "trust");
        return run_cli(args);
    }
    CliResult on_file(const std::string& command, std::vector<std::string> args) {
        args.insert(args.begin(), {command, "--file", path_});
        return trust(std::move(args));
    }

    TempDir dir_{"trust-cli"};
    std::string path_ = dir_.file("authorized_keys");
};

TEST_F(TrustCli, AddWritesALineANodeReadsWithItsPermissions) {
    const std::string key = new_key();
    const auto added =
        on_file("add", {key, "billing", "--send", "orders,refunds", "--publish", ""});
    ASSERT_EQ(added.exit_code, 0) << added;
    EXPECT_NE(added.out.find("billing"), std::string::npos) << added;
    EXPECT_NE(added.out.find(node_id_of(key)->to_string()), std::string::npos) << added;

    EXPECT_EQ(read_file(path_), key + " billing send=orders,refunds publish=\n");
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(TrustCli, AddTakesTheKeyFromANodesAddress) {
    const std::string a = new_key();
    const std::string b = new_key();
    ASSERT_EQ(on_file("add", {"tcp://10.0.0.5:5555#" + a, "alpha"}).exit_code, 0);
    ASSERT_EQ(on_file("add", {"10.0.0.6:5555#" + b, "beta"}).exit_code, 0);
    EXPECT_EQ(read_file(path_), a + " alpha\n" + b + " beta\n");
}

// '-' is a Z85 character: about one key in 85 begins with it, and an argument that begins with
// it must still be read as the key, not as an option (this test failed on such keys first).
TEST_F(TrustCli, AKeyThatBeginsWithADashIsAKeyNotAnOption) {
    std::string key;
    for (int i = 0; i < 20000 && !key.starts_with('-'); ++i) key = new_key();
    ASSERT_TRUE(key.starts_with('-')) << "no key began with '-' in 20 000";
    const auto added = on_file("add", {key, "dash", "--consume", "orders"});
    ASSERT_EQ(added.exit_code, 0) << added;
    EXPECT_EQ(read_file(path_), key + " dash consume=orders\n");
    const auto removed = on_file("remove", {key});
    ASSERT_EQ(removed.exit_code, 0) << removed;
    EXPECT_EQ(read_file(path_), "");
}

TEST_F(TrustCli, AddWithADataDirWritesItsAuthorizedKeys) {
    const std::string key = new_key();
    const auto added = trust({"add", key, "billing", "--data-dir", dir_.path()});
    ASSERT_EQ(added.exit_code, 0) << added;
    EXPECT_EQ(read_file(dir_.file(detail::kAuthorizedKeysFileName)), key + " billing\n");
}

TEST_F(TrustCli, ListShowsKeysIdsPermissionsAndTheLinesSkipped) {
    const std::string key = new_key();
    ASSERT_EQ(on_file("add", {key, "billing", "--subscribe", "orders."}).exit_code, 0);
    { std::ofstream(path_, std::ios::app) << "# a comment\nnot-a-key stock\n"; }

    const auto plain = on_file("list", {});
    ASSERT_EQ(plain.exit_code, 0) << plain;
    EXPECT_NE(plain.out.find("billing"), std::string::npos) << plain;
    EXPECT_NE(plain.out.find(key), std::string::npos) << plain;
    EXPECT_NE(plain.out.find(node_id_of(key)->to_string()), std::string::npos) << plain;
    EXPECT_NE(plain.out.find("subscribe=orders."), std::string::npos) << plain;
    EXPECT_NE(plain.err.find("line 3: not a Z85 key"), std::string::npos) << plain;

    const auto json = on_file("list", {"--json"});
    ASSERT_EQ(json.exit_code, 0) << json;
    const auto out = nlohmann::json::parse(json.out);
    EXPECT_EQ(out["file"], path_);
    ASSERT_EQ(out["keys"].size(), 1u) << json;
    const auto& entry = out["keys"][0];
    EXPECT_EQ(entry["key"], key);
    EXPECT_EQ(entry["name"], "billing");
    EXPECT_EQ(entry["id"], node_id_of(key)->to_string());
    EXPECT_EQ(entry["line"], 1);
    EXPECT_TRUE(entry["permissions"]["send"].is_null());
    EXPECT_EQ(entry["permissions"]["subscribe"], nlohmann::json::array({"orders."}));
    ASSERT_EQ(out["problems"].size(), 1u) << json;
    EXPECT_EQ(out["problems"][0]["line"], 3);
}

TEST_F(TrustCli, RemoveByNameKeepsTheOtherLines) {
    const std::string keep = "# the shop\n" + new_key() + " stock\n";
    { std::ofstream(path_) << keep; }
    ::chmod(path_.c_str(), 0600);
    const std::string key = new_key();
    ASSERT_EQ(on_file("add", {key, "billing"}).exit_code, 0);

    const auto removed = on_file("remove", {"billing"});
    ASSERT_EQ(removed.exit_code, 0) << removed;
    EXPECT_NE(removed.out.find(key), std::string::npos) << removed;
    EXPECT_EQ(read_file(path_), keep);

    expect_one_error_line(on_file("remove", {"billing"}), 1, "billing");
}

TEST_F(TrustCli, AKeyOrANameListedAlreadyIsRefused) {
    const std::string key = new_key();
    ASSERT_EQ(on_file("add", {key, "billing"}).exit_code, 0);
    expect_one_error_line(on_file("add", {key, "other"}), 1, "already listed on line 1");
    expect_one_error_line(on_file("add", {new_key(), "billing"}), 1, "already listed on line 1");
    EXPECT_EQ(read_file(path_), key + " billing\n");
}

TEST_F(TrustCli, WhatIsNoKeyOrNoNameIsRefused) {
    expect_one_error_line(on_file("add", {"not-a-key", "billing"}), 1, "is not a public key");
    expect_one_error_line(on_file("add", {"host:1#" + new_key().substr(1), "billing"}), 1,
                          "is not a public key");
    expect_one_error_line(on_file("add", {new_key(), "bad/name"}), 1, "name must be 1-48");
    expect_one_error_line(on_file("add", {new_key(), "billing", "--send", "a,,b"}), 1,
                          "send= entries");
    EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(TrustCli, AFileOthersMayWriteIsRefused) {
    ASSERT_EQ(on_file("add", {new_key(), "billing"}).exit_code, 0);
    ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
    expect_one_error_line(on_file("list", {}), 1, "chmod 600");
    expect_one_error_line(on_file("add", {new_key(), "stock"}), 1, "chmod 600");
}

TEST_F(TrustCli, OneOfFileOrDataDirIsNeeded) {
    expect_one_error_line(trust({"list"}), 2, "--file");
    expect_one_error_line(trust({"list", "--file", path_, "--data-dir", dir_.path()}), 2, "--file");
    expect_one_error_line(on_file("list", {}), 1, "no such file");
}

}  // namespace
}  // namespace peermq::cli_test

#endif  // PEERMQ_CLI
