// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Copy-out driven by a fake guest that lies the way a hostile box can: bad names, a name
// listed twice across pages, symlinks then directories of the same name, setuid modes,
// endless or non-advancing listings, endless depth, wrong sizes. Whatever it does, nothing
// outside the destination may change.
#include "src/runtime/tree_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

protocol::FileInfo Entry(std::string name, std::string kind, int64_t mode = 0644,
                         std::string target = "") {
  protocol::FileInfo info;
  info.path = std::move(name);
  info.kind = std::move(kind);
  info.mode = mode;
  info.target = std::move(target);
  return info;
}

// A guest tree: directory path -> its entries, listed `page` entries at a time; file path ->
// content. `list` and `read` may be replaced to misbehave.
class FakeGuest : public GuestTreeSource {
 public:
  std::map<std::string, std::vector<protocol::FileInfo>> dirs;
  std::map<std::string, std::string> files;
  std::map<std::string, int64_t> modes;
  size_t page = 2;
  std::function<Result<GuestListPage>(const std::string&, int64_t)> list;
  int64_t size_lie = 0;
  std::map<std::string, protocol::FileInfo> follow;  // Symlink path -> what it points to.

  std::optional<protocol::FileInfo> follow_all;  // Every symlink points to this.

  Result<protocol::FileInfo> Follow(const std::string& path) override {
    if (follow_all) return *follow_all;
    auto it = follow.find(path);
    if (it == follow.end()) return Status::NotFound("dangling guest symlink", path);
    return it->second;
  }

  Result<GuestListPage> List(const std::string& path, int64_t offset) override {
    if (list) return list(path, offset);
    auto it = dirs.find(path);
    if (it == dirs.end()) return Status::NotFound("no such guest dir", path);
    GuestListPage out;
    size_t start = static_cast<size_t>(offset);
    size_t end = std::min(it->second.size(), start + page);
    out.entries.assign(it->second.begin() + static_cast<std::ptrdiff_t>(start),
                       it->second.begin() + static_cast<std::ptrdiff_t>(end));
    out.next_offset = end < it->second.size() ? static_cast<int64_t>(end) : -1;
    return out;
  }

  Status Read(const std::string& path, protocol::FileInfo* info,
              const std::function<Status(std::string_view)>& write) override {
    auto it = files.find(path);
    if (it == files.end()) return Status::NotFound("no such guest file", path);
    info->kind = "file";
    info->size = static_cast<int64_t>(it->second.size()) + size_lie;
    info->mode = modes.count(path) ? modes[path] : 0644;
    info->mtime = 1000;
    std::string_view data = it->second;
    while (!data.empty()) {
      size_t n = std::min<size_t>(3, data.size());
      BOXLITE_RETURN_IF_ERROR(write(data.substr(0, n)));
      data.remove_prefix(n);
    }
    return Status::OK();
  }
};

class TreeCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = sys::TempDir::Create(::testing::TempDir(), "tree_copy_test.");
    ASSERT_TRUE(dir.ok()) << dir.error().ToString();
    dir_ = std::make_unique<sys::TempDir>(std::move(dir).value());
    ASSERT_TRUE(sys::MakeDirs(Path("dest")).ok());
    ASSERT_TRUE(sys::MakeDirs(Path("outside/sub")).ok());
    ASSERT_EQ(::chmod(Path("outside").c_str(), 0755), 0);
    ASSERT_TRUE(sys::WriteFileAtomic(Path("outside/canary"), "canary", 0644).ok());
    auto fd = sys::Open(Path("dest"), O_RDONLY | O_DIRECTORY);
    ASSERT_TRUE(fd.ok());
    dest_ = std::move(fd).value();
    outside_before_ = Snapshot("outside");
  }
  void TearDown() override {
    EXPECT_EQ(Snapshot("outside"), outside_before_) << "a path outside the destination changed";
    for (const auto& [path, line] : Snapshot("dest")) {
      EXPECT_EQ(path.find(".boxlite-"), std::string::npos) << "temporary file left: " << path;
    }
  }
  std::string Path(const std::string& name) { return sys::JoinPath(dir_->path(), name); }

  // path -> "mode size content-or-target", recursively, symlinks not followed.
  std::map<std::string, std::string> Snapshot(const std::string& rel) {
    std::map<std::string, std::string> out;
    struct stat st;
    std::string path = Path(rel);
    if (::lstat(path.c_str(), &st) != 0) return out;
    std::string line = base::StrFormat("%o", st.st_mode);
    if (S_ISREG(st.st_mode)) line += " " + *sys::ReadFile(path);
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
      line += " -> " + std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
    }
    out[rel] = line;
    if (S_ISDIR(st.st_mode)) {
      auto names = sys::ListDir(path);
      if (!names.ok()) return out;
      for (const auto& name : *names) out.merge(Snapshot(rel + "/" + name));
    }
    return out;
  }

  Status Copy(FakeGuest* guest, const std::string& top, const TreeLimits& limits = TreeLimits()) {
    return CopyTreeOut(guest, top, Entry(sys::Basename(top), "dir", 0755), dest_.get(),
                       sys::Basename(top), limits);
  }

  mode_t ModeOf(const std::string& rel) {
    struct stat st;
    EXPECT_EQ(::lstat(Path(rel).c_str(), &st), 0) << rel;
    return st.st_mode;
  }

  std::unique_ptr<sys::TempDir> dir_;
  base::UniqueFd dest_;
  std::map<std::string, std::string> outside_before_;
};

TEST_F(TreeCopyTest, CopiesATreeWithModesMasked) {
  FakeGuest guest;
  guest.dirs["/d"] = {Entry("a", "file"), Entry("suid", "file"), Entry("sub", "dir", 01777),
                      Entry("link", "symlink", 0777, "a"), Entry("fifo", "other")};
  guest.dirs["/d/sub"] = {Entry("b", "file")};
  guest.files = {{"/d/a", "alpha"}, {"/d/suid", "#!/bin/sh"}, {"/d/sub/b", "beta"}};
  guest.modes["/d/suid"] = 06755;
  ASSERT_TRUE(Copy(&guest, "/d").ok());
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/a")), "alpha");
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/sub/b")), "beta");
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/link")), "alpha");
  EXPECT_EQ(ModeOf("dest/d/suid") & 07777, 0755u);
  EXPECT_EQ(ModeOf("dest/d/sub") & 07777, 0777u);
  EXPECT_FALSE(sys::Exists(Path("dest/d/fifo")));
}

TEST_F(TreeCopyTest, UnsafeNamesAreRefused) {
  for (const std::string& bad :
       std::vector<std::string>{"..", ".", "", "../outside", "x/../../outside", "/abs",
                                std::string("a\0b", 3), std::string(300, 'n')}) {
    FakeGuest guest;
    guest.dirs["/d"] = {Entry(bad, "file")};
    guest.files["/d/" + bad] = "pwned";
    Status s = Copy(&guest, "/d");
    EXPECT_TRUE(s.IsProtocolError()) << s.ToString();
    EXPECT_NE(s.message().find("unsafe file name"), std::string::npos) << s.ToString();
  }
}

TEST_F(TreeCopyTest, ANameTwiceAcrossPagesIsRefused) {
  FakeGuest guest;
  guest.page = 1;
  guest.dirs["/d"] = {Entry("evil", "symlink", 0777, Path("outside")), Entry("evil", "dir", 0777)};
  guest.dirs["/d/evil"] = {Entry("canary", "file")};
  guest.files["/d/evil/canary"] = "pwned";
  Status s = Copy(&guest, "/d");
  EXPECT_TRUE(s.IsProtocolError()) << s.ToString();
  EXPECT_NE(s.message().find("twice"), std::string::npos) << s.ToString();
}

TEST_F(TreeCopyTest, SwapBetweenTwoCopiesNeverFollowsTheFirstCopysSymlink) {
  FakeGuest first;
  first.dirs["/d"] = {Entry("evil", "symlink", 0777, Path("outside")),
                      Entry("evilfile", "symlink", 0777, Path("outside/canary"))};
  ASSERT_TRUE(Copy(&first, "/d").ok());
  EXPECT_TRUE(S_ISLNK(ModeOf("dest/d/evil")));

  FakeGuest second;  // The guest replaced both links: a directory and a file.
  second.dirs["/d"] = {Entry("evil", "dir", 0777), Entry("evilfile", "file", 06777)};
  second.dirs["/d/evil"] = {Entry("canary", "file", 06777), Entry("sub", "dir", 0777)};
  second.dirs["/d/evil/sub"] = {};
  second.files = {{"/d/evil/canary", "pwned"}, {"/d/evilfile", "pwned"}};
  second.modes = {{"/d/evil/canary", 06777}, {"/d/evilfile", 06777}};
  ASSERT_TRUE(Copy(&second, "/d").ok());
  EXPECT_TRUE(S_ISDIR(ModeOf("dest/d/evil")));
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/evil/canary")), "pwned");
  EXPECT_EQ(ModeOf("dest/d/evil/canary") & 07777, 0777u);
  EXPECT_TRUE(S_ISREG(ModeOf("dest/d/evilfile")));
}

TEST_F(TreeCopyTest, SwapWithinOneCopyBetweenPages) {
  // Page 1 says "x" is a symlink to outside; by page 2 the guest lists its children as if
  // it were a directory ("x/y" as a name is refused; a directory "x" is a duplicate).
  FakeGuest guest;
  guest.list = [&](const std::string& path, int64_t offset) -> Result<GuestListPage> {
    GuestListPage p;
    if (path == "/d" && offset == 0) {
      p.entries = {Entry("x", "symlink", 0777, Path("outside"))};
      p.next_offset = 1;
    } else if (path == "/d" && offset == 1) {
      p.entries = {Entry("x/canary", "file")};
      p.next_offset = -1;
    }
    return p;
  };
  guest.files["/d/x/canary"] = "pwned";
  EXPECT_TRUE(Copy(&guest, "/d").IsProtocolError());
}

TEST_F(TreeCopyTest, PreexistingSymlinksAtTheDestinationAreReplacedNotFollowed) {
  ASSERT_TRUE(sys::MakeDirs(Path("dest/d")).ok());
  ASSERT_EQ(::symlink(Path("outside").c_str(), Path("dest/d/dir").c_str()), 0);
  ASSERT_EQ(::symlink(Path("outside/canary").c_str(), Path("dest/d/file").c_str()), 0);
  ASSERT_EQ(::symlink(Path("outside/new").c_str(), Path("dest/d/dangling").c_str()), 0);
  FakeGuest guest;
  guest.dirs["/d"] = {Entry("dir", "dir", 0777), Entry("file", "file"), Entry("dangling", "file")};
  guest.dirs["/d/dir"] = {Entry("canary", "file")};
  guest.files = {{"/d/dir/canary", "pwned"}, {"/d/file", "pwned"}, {"/d/dangling", "pwned"}};
  ASSERT_TRUE(Copy(&guest, "/d").ok());
  EXPECT_TRUE(S_ISDIR(ModeOf("dest/d/dir")));
  EXPECT_TRUE(S_ISREG(ModeOf("dest/d/file")));
  EXPECT_TRUE(S_ISREG(ModeOf("dest/d/dangling")));
}

TEST_F(TreeCopyTest, TheTopLevelSymlinkIsALinkThenReplacedByTheNextCopy) {
  FakeGuest guest;
  ASSERT_TRUE(CopyTreeOut(&guest, "/evil", Entry("evil", "symlink", 0777, Path("outside")),
                          dest_.get(), "evil")
                  .ok());
  EXPECT_TRUE(S_ISLNK(ModeOf("dest/evil")));
  guest.dirs["/evil"] = {Entry("canary", "file")};
  guest.files["/evil/canary"] = "pwned";
  ASSERT_TRUE(Copy(&guest, "/evil").ok());
  EXPECT_TRUE(S_ISDIR(ModeOf("dest/evil")));
  EXPECT_EQ(*sys::ReadFile(Path("dest/evil/canary")), "pwned");
}

TEST_F(TreeCopyTest, DirectoryFileMismatchIsAClearError) {
  ASSERT_TRUE(sys::MakeDirs(Path("dest/d/isdir")).ok());
  ASSERT_TRUE(sys::WriteFileAtomic(Path("dest/d/isfile"), "mine").ok());
  FakeGuest guest;
  guest.dirs["/d"] = {Entry("isdir", "file")};
  guest.files["/d/isdir"] = "x";
  Status s = Copy(&guest, "/d");
  EXPECT_NE(s.message().find("is a directory on the host"), std::string::npos) << s.ToString();
  guest.dirs["/d"] = {Entry("isfile", "dir")};
  guest.dirs["/d/isfile"] = {};
  s = Copy(&guest, "/d");
  EXPECT_NE(s.message().find("is not a directory"), std::string::npos) << s.ToString();
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/isfile")), "mine");
}

TEST_F(TreeCopyTest, WrongSizesFailWithoutATempFile) {
  for (int64_t lie : {-2, 2}) {
    FakeGuest guest;
    guest.dirs["/d"] = {Entry("f", "file")};
    guest.files["/d/f"] = "0123456789";
    guest.size_lie = lie;
    EXPECT_FALSE(Copy(&guest, "/d").ok());
    EXPECT_FALSE(sys::Exists(Path("dest/d/f")));
  }
}

TEST_F(TreeCopyTest, ListingsThatDoNotMoveForwardAreRefused) {
  FakeGuest guest;
  guest.list = [](const std::string&, int64_t offset) -> Result<GuestListPage> {
    GuestListPage p;
    p.next_offset = offset;  // Forever the same page.
    return p;
  };
  EXPECT_TRUE(Copy(&guest, "/d").IsProtocolError());
}

TEST_F(TreeCopyTest, EndlessListingsStopAtTheLimits) {
  TreeLimits limits;
  limits.max_entries = 5000;
  limits.max_held_names = 100'000;
  FakeGuest empty_pages;  // Forward-moving but empty pages, forever.
  empty_pages.list = [](const std::string&, int64_t offset) -> Result<GuestListPage> {
    GuestListPage p;
    p.next_offset = offset + 1;
    return p;
  };
  EXPECT_TRUE(Copy(&empty_pages, "/d", limits).IsResourceExhausted());

  FakeGuest many;  // Fresh names, forever.
  many.list = [](const std::string&, int64_t offset) -> Result<GuestListPage> {
    GuestListPage p;
    for (int i = 0; i < 100; ++i) p.entries.push_back(Entry(std::to_string(offset + i), "other"));
    p.next_offset = offset + 100;
    return p;
  };
  EXPECT_TRUE(Copy(&many, "/d", limits).IsResourceExhausted());
  limits.max_entries = 1'000'000;
  limits.max_held_names = 1000;
  EXPECT_TRUE(Copy(&many, "/d", limits).IsResourceExhausted());

  FakeGuest deep;  // Every directory holds one more.
  deep.list = [](const std::string&, int64_t) -> Result<GuestListPage> {
    GuestListPage p;
    p.entries = {Entry("d", "dir", 0755)};
    return p;
  };
  limits.max_depth = 20;
  Status s = Copy(&deep, "/d", limits);
  EXPECT_TRUE(s.IsResourceExhausted()) << s.ToString();
  EXPECT_NE(s.message().find("deeper than 20"), std::string::npos) << s.ToString();
}

TEST_F(TreeCopyTest, OverwriteOffKeepsEveryExistingEntry) {
  ASSERT_TRUE(sys::MakeDirs(Path("dest/d/sub")).ok());
  ASSERT_TRUE(sys::WriteFileAtomic(Path("dest/d/a"), "mine", 0600).ok());
  ASSERT_EQ(::symlink("mine-target", Path("dest/d/link").c_str()), 0);
  ASSERT_EQ(::symlink(Path("outside").c_str(), Path("dest/d/dirlink").c_str()), 0);
  CopyOptions keep;
  keep.overwrite = false;
  const std::vector<std::pair<protocol::FileInfo, std::string>> cases = {
      {Entry("a", "file"), "a"}, {Entry("link", "symlink", 0777, "theirs"), "link"},
      {Entry("dirlink", "dir", 0755), "dirlink"}, {Entry("link", "file"), "link"}};
  for (const auto& [entry, name] : cases) {
    FakeGuest guest;
    guest.dirs["/d"] = {entry};
    guest.dirs["/d/dirlink"] = {};
    guest.files = {{"/d/a", "theirs"}, {"/d/link", "theirs"}};
    Status s = CopyTreeOut(&guest, "/d", Entry("d", "dir", 0755), dest_.get(), "d",
                           TreeLimits(), keep);
    EXPECT_TRUE(s.IsAlreadyExists()) << name << ": " << s.ToString();
    EXPECT_NE(s.message().find("overwrite is off"), std::string::npos) << s.ToString();
  }
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/a")), "mine");
  EXPECT_EQ(ModeOf("dest/d/a") & 0777, 0600u);
  char buf[64];
  ssize_t n = ::readlink(Path("dest/d/link").c_str(), buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), "mine-target");
  EXPECT_TRUE(S_ISLNK(ModeOf("dest/d/dirlink")));

  // New names are still written, and existing directories merged into.
  FakeGuest fresh;
  fresh.dirs["/d"] = {Entry("sub", "dir", 0700), Entry("new", "file")};
  fresh.dirs["/d/sub"] = {Entry("deeper", "file")};
  fresh.files = {{"/d/new", "n"}, {"/d/sub/deeper", "x"}};
  ASSERT_TRUE(CopyTreeOut(&fresh, "/d", Entry("d", "dir", 0755), dest_.get(), "d",
                          TreeLimits(), keep).ok());
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/new")), "n");
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/sub/deeper")), "x");
}

TEST_F(TreeCopyTest, FollowedSymlinksArriveAsWhatTheyPointToBeneathTheDestination) {
  FakeGuest guest;
  // Links to a file and a directory in the box, and one whose target names a host path:
  // the box resolves it (to its own tree or nothing), the host never does.
  guest.dirs["/d"] = {Entry("tofile", "symlink", 0777, "/etc/f"),
                      Entry("todir", "symlink", 0777, "/etc/sub"),
                      Entry("escape", "symlink", 0777, Path("outside"))};
  guest.follow["/d/tofile"] = Entry("f", "file", 0640);
  guest.follow["/d/todir"] = Entry("sub", "dir", 0755);
  guest.follow["/d/escape"] = Entry("outside", "dir", 0755);
  guest.dirs["/d/todir"] = {Entry("inner", "file")};
  guest.dirs["/d/escape"] = {Entry("canary", "file")};
  guest.files = {{"/d/tofile", "file content"}, {"/d/todir/inner", "inner"},
                 {"/d/escape/canary", "the box's own"}};
  CopyOptions follow;
  follow.follow_symlinks = true;
  ASSERT_TRUE(CopyTreeOut(&guest, "/d", Entry("d", "dir", 0755), dest_.get(), "d",
                          TreeLimits(), follow).ok());
  EXPECT_TRUE(S_ISREG(ModeOf("dest/d/tofile")));
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/tofile")), "file content");
  EXPECT_TRUE(S_ISDIR(ModeOf("dest/d/todir")));
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/todir/inner")), "inner");
  EXPECT_EQ(*sys::ReadFile(Path("dest/d/escape/canary")), "the box's own");

  // A dangling link is a clear error.
  FakeGuest dangling;
  dangling.dirs["/d"] = {Entry("gone", "symlink", 0777, "/nowhere")};
  Status s = CopyTreeOut(&dangling, "/d", Entry("d", "dir", 0755), dest_.get(), "d2",
                         TreeLimits(), follow);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("follow the symlink"), std::string::npos) << s.ToString();

  // A loop (a link to its own directory) ends at the depth limit.
  FakeGuest loop;
  loop.list = [](const std::string&, int64_t) -> Result<GuestListPage> {
    GuestListPage p;
    p.entries = {Entry("self", "symlink", 0777, ".")};
    return p;
  };
  loop.follow_all = Entry("self", "dir", 0755);
  TreeLimits limits;
  limits.max_depth = 10;
  s = CopyTreeOut(&loop, "/d", Entry("d", "dir", 0755), dest_.get(), "d3", limits, follow);
  EXPECT_TRUE(s.IsResourceExhausted()) << s.ToString();
}

TEST_F(TreeCopyTest, ChildrenOutWritesTheContentsIntoTheDirectory) {
  FakeGuest guest;
  guest.dirs["/d"] = {Entry("a", "file"), Entry("sub", "dir", 0755)};
  guest.dirs["/d/sub"] = {Entry("b", "file")};
  guest.files = {{"/d/a", "alpha"}, {"/d/sub/b", "beta"}};
  ASSERT_TRUE(CopyChildrenOut(&guest, "/d", dest_.get()).ok());
  EXPECT_EQ(*sys::ReadFile(Path("dest/a")), "alpha");
  EXPECT_EQ(*sys::ReadFile(Path("dest/sub/b")), "beta");
  EXPECT_FALSE(sys::Exists(Path("dest/d")));
}

}  // namespace
}  // namespace boxlite::runtime
