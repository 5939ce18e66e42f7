// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

#include "src/image/ext4_test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <ext2fs/ext2fs.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include "src/base/sha256.h"
#include "src/base/strings.h"
#include "src/sys/subprocess.h"

extern "C" {
#include <et/com_err.h>
}

namespace boxlite::image::ext4test {

namespace {

constexpr uint64_t kMaxHashedSize = 256u << 20;

struct FsCloser {
  void operator()(ext2_filsys fs) const { ext2fs_close_free(&fs); }
};
using FsPtr = std::unique_ptr<struct struct_ext2_filsys, FsCloser>;

Status Err(errcode_t err, const std::string& what) {
  return Status::IoError(what, error_message(err));
}

Result<FsPtr> OpenFs(const std::string& image) {
  ext2_filsys fs = nullptr;
  errcode_t err = ext2fs_open2(image.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0,
                               unix_io_manager, &fs);
  if (err != 0) return Err(err, "open " + image);
  return FsPtr(fs);
}

Ext4Time DecodeTime(__u32 lo, __u32 extra) {
  Ext4Time t;
  t.sec = static_cast<int64_t>(static_cast<int32_t>(lo)) +
          (static_cast<int64_t>(extra & 3) << 32);
  t.nsec = extra >> 2;
  return t;
}

struct DirEntryOut {
  std::string name;
  ext2_ino_t ino;
};

int CollectEntry(ext2_ino_t, int, struct ext2_dir_entry* dirent, int, int, char*, void* priv) {
  auto* out = static_cast<std::vector<DirEntryOut>*>(priv);
  int len = ext2fs_dirent_name_len(dirent);
  std::string name(dirent->name, static_cast<size_t>(len));
  if (name != "." && name != "..") out->push_back(DirEntryOut{name, dirent->inode});
  return 0;
}

int CollectXattrName(char* name, char*, size_t, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

Status ReadContent(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode* inode, uint64_t offset,
                   uint64_t len, base::Sha256* hash, std::string* out) {
  ext2_file_t file = nullptr;
  errcode_t err = ext2fs_file_open2(fs, ino, inode, 0, &file);
  if (err != 0) return Err(err, "open file");
  err = ext2fs_file_llseek(file, offset, EXT2_SEEK_SET, nullptr);
  std::vector<char> buf(1 << 16);
  while (err == 0 && len > 0) {
    unsigned int got = 0;
    unsigned int want = static_cast<unsigned int>(std::min<uint64_t>(len, buf.size()));
    err = ext2fs_file_read(file, buf.data(), want, &got);
    if (err != 0 || got == 0) break;
    if (hash != nullptr) hash->Update(buf.data(), got);
    if (out != nullptr) out->append(buf.data(), got);
    len -= got;
  }
  ext2fs_file_close(file);
  if (err != 0) return Err(err, "read file");
  return Status::OK();
}

Status FillNode(ext2_filsys fs, ext2_ino_t ino, Ext4Node* node) {
  std::vector<uint8_t> raw(EXT2_INODE_SIZE(fs->super));
  auto* inode = reinterpret_cast<struct ext2_inode_large*>(raw.data());
  errcode_t err = ext2fs_read_inode_full(fs, ino, reinterpret_cast<struct ext2_inode*>(inode),
                                         static_cast<int>(raw.size()));
  if (err != 0) return Err(err, base::StrFormat("read inode %u", ino));
  auto* small = reinterpret_cast<struct ext2_inode*>(inode);
  node->ino = ino;
  uint16_t mode = inode->i_mode;
  node->perm = mode & 07777;
  switch (mode & LINUX_S_IFMT) {
    case LINUX_S_IFREG: node->type = 'f'; break;
    case LINUX_S_IFDIR: node->type = 'd'; break;
    case LINUX_S_IFLNK: node->type = 'l'; break;
    case LINUX_S_IFCHR: node->type = 'c'; break;
    case LINUX_S_IFBLK: node->type = 'b'; break;
    case LINUX_S_IFIFO: node->type = 'p'; break;
    case LINUX_S_IFSOCK: node->type = 's'; break;
    default: node->type = '?'; break;
  }
  node->uid = inode_uid(*inode);
  node->gid = inode_gid(*inode);
  node->size = EXT2_I_SIZE(small);
  node->nlink = inode->i_links_count;
  node->blocks = ext2fs_get_stat_i_blocks(fs, small) / (fs->blocksize / 512);
  node->atime = DecodeTime(inode->i_atime, inode->i_atime_extra);
  node->mtime = DecodeTime(inode->i_mtime, inode->i_mtime_extra);
  node->ctime = DecodeTime(inode->i_ctime, inode->i_ctime_extra);
  if (node->type == 'c' || node->type == 'b') {
    if (inode->i_block[0] != 0) {
      node->major = (inode->i_block[0] >> 8) & 255;
      node->minor = inode->i_block[0] & 255;
    } else {
      uint32_t x = inode->i_block[1];
      node->major = (x >> 8) & 0xfff;
      node->minor = (x & 0xff) | ((x >> 12) & 0xfff00);
    }
  }
  if (inode->i_flags & EXT4_EXTENTS_FL) {
    ext2_extent_handle_t handle = nullptr;
    err = ext2fs_extent_open2(fs, ino, small, &handle);
    if (err != 0) return Err(err, "open extents");
    struct ext2fs_extent ext {};
    err = ext2fs_extent_get(handle, EXT2_EXTENT_ROOT, &ext);
    while (err == 0) {
      if ((ext.e_flags & EXT2_EXTENT_FLAGS_LEAF) &&
          !(ext.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT)) {
        node->extents.emplace_back(ext.e_lblk, ext.e_len);
      }
      err = ext2fs_extent_get(handle, EXT2_EXTENT_NEXT, &ext);
    }
    ext2fs_extent_free(handle);
  }
  if (node->type == 'l') {
    if (ext2fs_is_fast_symlink(small)) {
      node->target.assign(reinterpret_cast<const char*>(inode->i_block), node->size);
    } else {
      Status s = ReadContent(fs, ino, small, 0, node->size, nullptr, &node->target);
      if (!s.ok()) return s;
    }
  }
  if (node->type == 'f' && node->size <= kMaxHashedSize) {
    base::Sha256 hash;
    Status s = ReadContent(fs, ino, small, 0, node->size, &hash, nullptr);
    if (!s.ok()) return s;
    node->sha256 = hash.FinishHex();
  }
  struct ext2_xattr_handle* xh = nullptr;
  if (ext2fs_xattrs_open(fs, ino, &xh) == 0) {
    std::vector<std::string> names;
    if (ext2fs_xattrs_read(xh) == 0) ext2fs_xattrs_iterate(xh, CollectXattrName, &names);
    // ext2fs_xattr_get() turns on-disk ACLs back into the form getxattr(2) returns.
    for (const std::string& name : names) {
      void* value = nullptr;
      size_t len = 0;
      if (ext2fs_xattr_get(xh, name.c_str(), &value, &len) == 0) {
        node->xattrs[name] = std::string(static_cast<char*>(value), len);
        ext2fs_free_mem(&value);
      }
    }
    ext2fs_xattrs_close(&xh);
  }
  return Status::OK();
}

}  // namespace

Result<std::map<std::string, Ext4Node>> WalkExt4(const std::string& image) {
  Result<FsPtr> fs = OpenFs(image);
  if (!fs.ok()) return fs.error();
  ext2_filsys f = fs->get();
  std::map<std::string, Ext4Node> out;
  Ext4Node root;
  root.path = "/";
  Status s = FillNode(f, EXT2_ROOT_INO, &root);
  if (!s.ok()) return s;
  out["/"] = root;
  std::vector<std::pair<ext2_ino_t, std::string>> stack{{EXT2_ROOT_INO, ""}};
  while (!stack.empty()) {
    auto [dir, prefix] = stack.back();
    stack.pop_back();
    std::vector<DirEntryOut> entries;
    errcode_t err = ext2fs_dir_iterate2(f, dir, 0, nullptr, CollectEntry, &entries);
    if (err != 0) return Err(err, "iterate " + (prefix.empty() ? "/" : prefix));
    for (const DirEntryOut& e : entries) {
      Ext4Node node;
      node.path = prefix + "/" + e.name;
      s = FillNode(f, e.ino, &node);
      if (!s.ok()) return s.Wrap(node.path);
      if (node.type == 'd') stack.emplace_back(e.ino, node.path);
      out[node.path] = std::move(node);
    }
  }
  return out;
}

Result<std::string> ReadExt4File(const std::string& image, const std::string& path,
                                 uint64_t offset, size_t len) {
  Result<FsPtr> fs = OpenFs(image);
  if (!fs.ok()) return fs.error();
  ext2_ino_t ino = 0;
  errcode_t err = ext2fs_namei(fs->get(), EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &ino);
  if (err != 0) return Err(err, "look up " + path);
  struct ext2_inode inode;
  err = ext2fs_read_inode(fs->get(), ino, &inode);
  if (err != 0) return Err(err, "read inode of " + path);
  std::string out;
  Status s = ReadContent(fs->get(), ino, &inode, offset, len, nullptr, &out);
  if (!s.ok()) return s;
  return out;
}

Result<Ext4Usage> Ext4UsageOf(const std::string& image) {
  Result<FsPtr> fs = OpenFs(image);
  if (!fs.ok()) return fs.error();
  const struct ext2_super_block* sb = fs->get()->super;
  Ext4Usage u;
  u.blocks = ext2fs_blocks_count(const_cast<struct ext2_super_block*>(sb));
  u.free_blocks = ext2fs_free_blocks_count(const_cast<struct ext2_super_block*>(sb));
  u.inodes = sb->s_inodes_count;
  u.free_inodes = sb->s_free_inodes_count;
  return u;
}

Status CheckExt4(const std::string& image) {
  std::string e2fsck = "e2fsck";
  for (const char* candidate : {"/usr/sbin/e2fsck", "/sbin/e2fsck"}) {
    if (::access(candidate, X_OK) == 0) {
      e2fsck = candidate;
      break;
    }
  }
  Result<std::string> out = sys::RunCommand({e2fsck, "-fn", image});
  if (!out.ok()) return out.error();
  return Status::OK();
}


// ---------------------------------------------------------------------------------------
// Building layers.

namespace {

la_ssize_t AppendToString(struct archive*, void* s, const void* buf, size_t n) {
  static_cast<std::string*>(s)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

void AddFilter(struct archive* a, Compression c) {
  if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
}

std::string Octal(uint64_t v, size_t width) {
  std::string s = base::StrFormat("%0*llo", static_cast<int>(width - 1),
                                  static_cast<unsigned long long>(v));
  s.push_back('\0');
  return s;
}

std::string PaxRecord(const std::string& key, const std::string& value) {
  size_t len = key.size() + value.size() + 3;
  for (;;) {
    size_t total = len + std::to_string(len).size();
    if (std::to_string(total).size() + key.size() + value.size() + 3 == total) {
      return std::to_string(total) + " " + key + "=" + value + "\n";
    }
    ++len;
  }
}

}  // namespace

TarEntry File(std::string path, std::string data, uint32_t perm) {
  TarEntry e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}
TarEntry Dir(std::string path, uint32_t perm) {
  TarEntry e;
  e.path = std::move(path);
  e.type = 'd';
  e.perm = perm;
  return e;
}
TarEntry Symlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.type = 'l';
  e.link = std::move(target);
  e.perm = 0777;
  return e;
}
TarEntry Hardlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.type = 'h';
  e.link = std::move(target);
  return e;
}
TarEntry Device(std::string path, char type, uint32_t major, uint32_t minor) {
  TarEntry e;
  e.path = std::move(path);
  e.type = type;
  e.major = major;
  e.minor = minor;
  e.perm = 0660;
  return e;
}
TarEntry Whiteout(const std::string& dir, const std::string& name) {
  return File((dir.empty() ? "" : dir + "/") + ".wh." + name, "");
}
TarEntry Opaque(const std::string& dir) {
  return File((dir.empty() ? "" : dir + "/") + ".wh..wh..opq", "");
}



std::string MakeTar(const std::vector<TarEntry>& entries, Compression c) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  AddFilter(a, c);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open2(a, &out, nullptr, AppendToString, nullptr, nullptr), ARCHIVE_OK);
  for (const TarEntry& t : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, t.path.c_str());
    archive_entry_set_perm(e, t.perm);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, t.mtime_nsec);
    if (t.has_atime) archive_entry_set_atime(e, t.atime, 0);
    switch (t.type) {
      case 'f':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(t.data.size()));
        break;
      case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_copy_symlink(e, t.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_copy_hardlink(e, t.link.c_str());
        archive_entry_set_size(e, 0);
        break;
      case 'c':
      case 'b':
        archive_entry_set_filetype(e, t.type == 'c' ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(e, t.major);
        archive_entry_set_rdevminor(e, t.minor);
        break;
      case 'p': archive_entry_set_filetype(e, AE_IFIFO); break;
      default: ADD_FAILURE() << "bad type " << t.type;
    }
    for (const auto& [name, value] : t.xattrs) {
      archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
    }
    if (!t.acl_text.empty()) {
      EXPECT_EQ(archive_entry_acl_from_text(e, t.acl_text.c_str(),
                                            ARCHIVE_ENTRY_ACL_TYPE_ACCESS),
                ARCHIVE_OK);
    }
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << t.path << ": " << archive_error_string(a);
    if (t.type == 'f' && !t.data.empty()) {
      EXPECT_EQ(archive_write_data(a, t.data.data(), t.data.size()),
                static_cast<la_ssize_t>(t.data.size()));
    }
    archive_entry_free(e);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

// Compresses arbitrary bytes (a hand-made tar) into one gzip member or zstd frame.
std::string Compress(const std::string& data, Compression c) {
  if (c == Compression::kNone) return data;
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  AddFilter(a, c);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open2(a, &out, nullptr, AppendToString, nullptr, nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "data");
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Hand-made tar pieces, for what libarchive's writer would not produce.

std::string UstarHeader(std::string_view name, char type, uint64_t size,
                        std::string_view link, uint32_t mode) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::memcpy(h.data() + 100, Octal(mode, 8).data(), 8);
  std::memcpy(h.data() + 108, Octal(0, 8).data(), 8);
  std::memcpy(h.data() + 116, Octal(0, 8).data(), 8);
  std::memcpy(h.data() + 124, Octal(size, 12).data(), 12);
  std::memcpy(h.data() + 136, Octal(kTestMtime, 12).data(), 12);
  h[156] = type;
  std::memcpy(h.data() + 157, link.data(), std::min<size_t>(link.size(), 100));
  std::memcpy(h.data() + 257, "ustar\0" "00", 8);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::memcpy(h.data() + 148, Octal(sum, 7).data(), 7);
  return h;
}

std::string Padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}


std::string PaxHeader(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string body;
  for (const auto& [k, v] : records) body += PaxRecord(k, v);
  return UstarHeader("PaxHeaders/x", 'x', body.size()) + Padded(body);
}

std::string EndOfArchive() { return std::string(1024, '\0'); }

// A GNU sparse 1.0 (pax) entry: `segments` are (offset, data) pairs of a file of
// `realsize` bytes; everything else is a hole.
std::string SparseEntry(const std::string& name, uint64_t realsize,
                        const std::vector<std::pair<uint64_t, std::string>>& segments) {
  std::string map = std::to_string(segments.size()) + "\n";
  std::string data;
  for (const auto& [off, bytes] : segments) {
    map += std::to_string(off) + "\n" + std::to_string(bytes.size()) + "\n";
    data += bytes;
  }
  map = Padded(map);
  std::string out = PaxHeader({{"GNU.sparse.major", "1"},
                               {"GNU.sparse.minor", "0"},
                               {"GNU.sparse.name", name},
                               {"GNU.sparse.realsize", std::to_string(realsize)}});
  out += UstarHeader("GNUSparseFile.0/x", '0', map.size() + data.size());
  out += map + Padded(data);
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string Sha(const std::string& data) { return base::Sha256Hex(data); }



// ---------------------------------------------------------------------------------------
// The fixture.

void Ext4BuilderTest::SetUp() {
  const char* tmp = std::getenv("TMPDIR");
  Result<sys::TempDir> dir = sys::TempDir::Create(tmp != nullptr ? tmp : "/tmp", "ext4b");
  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  dir_ = std::make_unique<sys::TempDir>(std::move(*dir));
  image_ = dir_->path() + "/rootfs.ext4";
}

Result<LayerApplyResult> Ext4BuilderTest::Apply(Ext4Builder& builder, const std::string& layer) {
  int fd = memfd_create("layer", MFD_CLOEXEC);
  if (fd < 0) return Status::IoError("memfd_create");
  EXPECT_TRUE(sys::WriteAll(fd, layer).ok());
  lseek(fd, 0, SEEK_SET);
  Result<LayerApplyResult> r = builder.ApplyLayer(fd);
  close(fd);
  return r;
}

Status Ext4BuilderTest::Build(const std::vector<std::string>& layers, uint64_t size,
                              std::vector<LayerApplyResult>* results) {
  Ext4BuildOptions options;
  options.size_bytes = size;
  Result<std::unique_ptr<Ext4Builder>> b = Ext4Builder::Create(image_, options);
  if (!b.ok()) return b.error();
  for (const std::string& layer : layers) {
    Result<LayerApplyResult> r = Apply(**b, layer);
    if (!r.ok()) return r.error();
    if (results != nullptr) results->push_back(*r);
  }
  return (*b)->Finish();
}

void Ext4BuilderTest::BuildOk(const std::vector<std::string>& layers, uint64_t size) {
  Status s = Build(layers, size);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectClean();
}

std::map<std::string, Ext4Node> Ext4BuilderTest::Walk() {
  Result<std::map<std::string, Ext4Node>> r = WalkExt4(image_);
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : std::map<std::string, Ext4Node>{};
}

void Ext4BuilderTest::ExpectClean() {
  Status s = CheckExt4(image_);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

std::set<std::string> Ext4BuilderTest::UserPaths(const std::map<std::string, Ext4Node>& tree) {
  std::set<std::string> out;
  for (const auto& [path, node] : tree) {
    if (path != "/" && path != "/lost+found") out.insert(path);
  }
  return out;
}

void Ext4BuilderTest::ExpectError(const Status& s, StatusCode code,
                                  const std::vector<std::string>& fragments) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), code) << s.ToString();
  for (const std::string& f : fragments) {
    EXPECT_NE(s.message().find(f), std::string::npos) << "'" << f << "' not in " << s.ToString();
  }
}

}  // namespace boxlite::image::ext4test
