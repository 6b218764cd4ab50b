// Small files a node keeps private and must not lose half-written: node.key, incarnation,
// authorized_keys and known_keys. Written whole beside the old one and renamed over it, so that
// a reader (or a crash) sees the old file or the new one, never part of either.
#pragma once

#include <filesystem>
#include <string_view>

#include "peermq/status.hpp"

namespace peermq::detail {

// Replaces `path` with `text`, mode 0600 whatever the umask: a temporary file beside it (a
// unique name, so that two writers at once cannot write into one), synced, renamed over it,
// then the directory synced so that the rename outlives a crash. io_error names the file.
Status replace_private_file(const std::filesystem::path& path, std::string_view text);

// Makes a new or renamed file's directory entry durable (best effort: nothing to report when
// the directory cannot be opened).
void sync_directory(const std::filesystem::path& dir);

}  // namespace peermq::detail
