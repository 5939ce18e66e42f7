// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Design of the tar -> ext4 writer.
//
// The builder formats a fresh ext4 file system in a sparse file with libext2fs (4 KiB
// blocks, extents, 64bit, flex_bg, metadata_csum, a lazily initialised journal, inode
// tables marked zeroed because the file was just created) and then writes every layer
// straight into it. Nothing is ever unpacked on the host.
//
// The namespace is kept in memory. Every directory of the image is a DirNode holding its
// children (name -> inode, type, and the layer that brought the entry); directories are
// written to disk only once, in Finish(): one packed block, or an htree (dir_index, hash
// ordered leaves under one or two index levels, as `e2fsck -D` builds) when they outgrow
// a block. This makes lookups, replacements and whiteouts hash-map operations instead of
// directory-block scans, and writes each directory block exactly once. Non-directory
// inodes (files, symlinks, devices) are written as their entries arrive.
//
// File data: each file's bytes are staged per 4 KiB block; all-zero blocks become holes
// (as `mke2fs -d` does), sparse entries keep their holes without ever iterating over
// them, and the remaining blocks are allocated as contiguous ranges from a moving goal.
// Data goes through a write-back batch that coalesces consecutive files into one large
// io_channel write (large writes bypass and invalidate the unix io manager's small cache,
// so metadata and data stay coherent). The batch is flushed before any block is freed, so
// it never holds a block that libext2fs could hand out again as metadata. Extent trees of
// up to four extents are written straight into the inode; longer ones use libext2fs's
// extent API.
//
// Paths: entry names are cleaned lexically (tar_path.h); ".." above the root is an error.
// Intermediate components are resolved inside the image like securejoin: a symlink met in
// the middle of a path is followed, absolute targets restart at the image root, ".."
// stops at the root, and more than 40 symlinks fail with Corruption. The last component
// of an entry is never followed: the entry replaces whatever is there. Missing parents are
// created as directories (0755, root, the entry's mtime).
//
// Whiteouts are collected while a layer is read and applied when its tar ends, so that
// the result does not depend on where in the tar they appear. They remove only entries
// that lower layers brought: an entry records the layer that created or last replaced
// it, and a directory records the last layer that added anything below it.
//
// Thread-safety: an Ext4Builder is used by one thread (see the header).
//
// Size: one file on purpose: the in-memory namespace, the block allocator and the htree
// writer below share the builder's invariants (each directory block written once, whiteouts
// applied before Finish); the hostile-input tests in ext4_hostile_test.cc cover it as one.

#include "src/image/ext4_builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "src/base/log.h"
#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/base/unique_fd.h"
#include "src/image/layer_stream.h"
#include "src/image/tar_path.h"
#include "src/sys/errno_status.h"

// com_err.h has no C++ guards of its own.
extern "C" {
#include <et/com_err.h>
}

namespace boxlite::image {

namespace {

constexpr uint32_t kBlockSize = 4096;
constexpr uint32_t kInodeSize = 256;
constexpr uint32_t kBytesPerInode = 8192;
constexpr int kMaxSymlinkHops = 40;            // Linux's MAXSYMLINKS.
constexpr uint32_t kMaxFileLinks = 65000;      // EXT4_LINK_MAX.
constexpr uint32_t kMaxExtentBlocks = 32768;   // EXT_INIT_MAX_LEN.
constexpr uint64_t kMaxFileBlocks = (1ull << 32) - 1;
constexpr size_t kMaxSymlinkBytes = kBlockSize - 1;
constexpr size_t kStageBlocks = 256;           // Per-file staging: 1 MiB.
constexpr size_t kBatchBlocks = 2048;          // Data write-back batch: 8 MiB.
constexpr uint32_t kDirTailBytes = 12;         // struct ext2_dir_entry_tail.
constexpr uint32_t kDirUsableBytes = kBlockSize - kDirTailBytes;
// A dirent never straddles blocks, so a block can waste up to one maximal record.
constexpr uint32_t kDirPackedBytes = kDirUsableBytes - 264;
// Blocks kept free for extent-tree and xattr blocks while data is being written.
constexpr uint64_t kMetadataSlackBlocks = 64;
// The layer index of what the builder itself creates (lost+found): whiteouts never remove
// it, only an explicit entry replaces it.
constexpr uint32_t kBaseLayer = 0;
// Uncompressed bytes a layer may stream: 4x the file system size plus 1 GiB.
constexpr uint64_t kStreamBudgetFactor = 4;
constexpr uint64_t kStreamBudgetSlack = 1ull << 30;
constexpr int64_t kMinTime = INT32_MIN;
constexpr int64_t kMaxTime = static_cast<int64_t>(INT32_MAX) + 3 * (int64_t{1} << 32);

void InitErrorTable() {
  static std::once_flag once;
  std::call_once(once, [] { initialize_ext2_error_table(); });
}

// The one place a libext2fs error code becomes a Status.
Status Ext2Error(errcode_t err, std::string_view context) {
  switch (err) {
    case EXT2_ET_BLOCK_ALLOC_FAIL:
    case EXT2_ET_INODE_ALLOC_FAIL:
    case EXT2_ET_DIR_NO_SPACE:
    case EXT2_ET_NO_MEMORY:
    case ENOSPC:
    case ENOMEM:
    case EDQUOT:
      return Status::ResourceExhausted(
          context, std::string(error_message(err)) + " (the file system is full)");
    default:
      break;
  }
  if (err > 0 && err < 4096) {
    return sys::ErrnoStatus(static_cast<int>(err), "%.*s", static_cast<int>(context.size()),
                            context.data());
  }
  return Status::IoError(context, error_message(err));
}

struct Timestamp {
  int64_t sec = 0;
  uint32_t nsec = 0;
};

struct Xattr {
  std::string name;
  std::string value;
};

// What an entry says about its inode besides the type and the data.
struct Meta {
  uint32_t perm = 0755;  // Permission bits including setuid, setgid and sticky.
  uint32_t uid = 0;
  uint32_t gid = 0;
  Timestamp atime;
  Timestamp mtime;
  Timestamp ctime;
  std::vector<Xattr> xattrs;
  std::string origin;  // The quoted entry name, kept only when there are xattrs.
};

// One name in a directory.
struct Entry {
  ext2_ino_t ino = 0;
  uint8_t type = EXT2_FT_UNKNOWN;  // EXT2_FT_*.
  uint32_t layer = 0;              // The layer that created or last replaced this entry.
};

struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using ChildMap = std::unordered_map<std::string, Entry, NameHash, std::equal_to<>>;

struct DirNode {
  ext2_ino_t ino = 0;
  DirNode* parent = nullptr;  // The root is its own parent.
  Meta meta;
  ChildMap children;
  uint32_t subdirs = 0;
  uint32_t touched_layer = 0;  // Last layer that added or replaced anything below.
  uint64_t dirent_bytes = 24;  // Record lengths of ".", ".." and the children.
  uint32_t min_blocks = 1;
};

struct Extent {
  uint64_t lblk = 0;
  uint64_t pblk = 0;
  uint32_t len = 0;
};

struct PendingWhiteout {
  std::string parent;  // Cleaned path of the directory holding the whiteout.
  std::string name;    // Empty for an opaque marker.
  std::string display;
};

uint32_t RecLen(size_t name_len) { return static_cast<uint32_t>((8 + name_len + 3) & ~size_t{3}); }

uint64_t DirBlocksFor(const DirNode& d) {
  uint64_t blocks = (d.dirent_bytes + kDirPackedBytes - 1) / kDirPackedBytes;
  return std::max<uint64_t>(blocks, d.min_blocks);
}

bool IsZeroBlock(const uint8_t* p) {
  static const uint8_t kZeros[kBlockSize] = {};
  return std::memcmp(p, kZeros, kBlockSize) == 0;
}

void EncodeTime(Timestamp t, __u32* lo, __u32* extra) {
  int64_t sec = std::clamp(t.sec, kMinTime, kMaxTime);
  uint32_t low = static_cast<uint32_t>(sec);
  int64_t epoch = (sec - static_cast<int64_t>(static_cast<int32_t>(low))) >> 32;
  *lo = low;
  *extra = (t.nsec << 2) | static_cast<uint32_t>(epoch & 3);
}

std::string Quote(std::string_view s) { return QuoteForMessage(s); }

// A zeroed, suitably aligned on-disk inode of kInodeSize bytes.
class InodeBuf {
 public:
  InodeBuf() { std::memset(words_, 0, sizeof(words_)); }
  ext2_inode_large* large() { return reinterpret_cast<ext2_inode_large*>(words_); }
  ext2_inode* small() { return reinterpret_cast<ext2_inode*>(words_); }

 private:
  uint64_t words_[kInodeSize / 8];
};

// Coalesces writes of consecutive blocks into large io_channel writes.
class BlockBatch {
 public:
  BlockBatch() : buf_(new uint8_t[kBatchBlocks * kBlockSize]) {}

  void set_fs(ext2_filsys fs) { fs_ = fs; }

  Status Write(blk64_t blk, const uint8_t* data, uint64_t count) {
    if (count_ > 0 && blk != start_ + count_) BOXLITE_RETURN_IF_ERROR(Flush());
    while (count > 0) {
      if (count_ == 0 && count >= kBatchBlocks) {
        uint64_t n = std::min<uint64_t>(count, kBatchBlocks * 16);
        BOXLITE_RETURN_IF_ERROR(WriteOut(blk, data, n));
        blk += n;
        data += n * kBlockSize;
        count -= n;
        continue;
      }
      if (count_ == 0) start_ = blk;
      uint64_t n = std::min<uint64_t>(count, kBatchBlocks - count_);
      std::memcpy(buf_.get() + count_ * kBlockSize, data, n * kBlockSize);
      count_ += n;
      blk += n;
      data += n * kBlockSize;
      count -= n;
      if (count_ == kBatchBlocks) BOXLITE_RETURN_IF_ERROR(Flush());
    }
    return Status::OK();
  }

  Status Flush() {
    if (count_ == 0) return Status::OK();
    uint64_t n = count_;
    count_ = 0;
    return WriteOut(start_, buf_.get(), n);
  }

 private:
  Status WriteOut(blk64_t blk, const uint8_t* data, uint64_t n) {
    errcode_t err = io_channel_write_blk64(fs_->io, blk, static_cast<int>(n), data);
    if (err != 0) return Ext2Error(err, "write image data");
    return Status::OK();
  }

  ext2_filsys fs_ = nullptr;
  std::unique_ptr<uint8_t[]> buf_;
  blk64_t start_ = 0;
  uint64_t count_ = 0;
};

// Packs directory entries into blocks appended to `out`; each block ends with the
// metadata_csum tail. The last entry of a block stretches to the tail.
class DirBlockPacker {
 public:
  DirBlockPacker(ext2_filsys fs, std::vector<uint8_t>* out) : fs_(fs), out_(out) {}

  // Adds an entry; true when a new block had to be started for it.
  bool Add(ext2_ino_t ino, std::string_view name, uint8_t type) {
    uint32_t rec = RecLen(name.size());
    bool fresh = !open_ || off_ + rec > kDirUsableBytes;
    if (fresh) StartBlock();
    uint8_t* block = out_->data() + out_->size() - kBlockSize;
    auto* de = reinterpret_cast<ext2_dir_entry*>(block + off_);
    de->inode = ino;
    ext2fs_set_rec_len(fs_, rec, de);
    ext2fs_dirent_set_name_len(de, static_cast<int>(name.size()));
    ext2fs_dirent_set_file_type(de, type);
    std::memcpy(de->name, name.data(), name.size());
    last_ = off_;
    off_ += rec;
    return fresh;
  }

  // Closes the current block and starts an empty one.
  void StartBlock() {
    Close();
    out_->resize(out_->size() + kBlockSize, 0);
    open_ = true;
    off_ = 0;
    last_ = 0;
  }

  // Finishes the current block, if any: an empty block gets one unused entry.
  void Close() {
    if (!open_) return;
    uint8_t* block = out_->data() + out_->size() - kBlockSize;
    auto* de = reinterpret_cast<ext2_dir_entry*>(block + last_);
    ext2fs_set_rec_len(fs_, kDirUsableBytes - static_cast<unsigned int>(last_), de);
    ext2fs_initialize_dirent_tail(fs_, EXT2_DIRENT_TAIL(block, kBlockSize));
    open_ = false;
  }

 private:
  ext2_filsys fs_;
  std::vector<uint8_t>* out_;
  bool open_ = false;
  size_t off_ = 0;   // Next free byte in the open block.
  size_t last_ = 0;  // Offset of the last entry in the open block.
};

// Writes a dx_countlimit and entries (the first entry's hash slot holds the countlimit).
void PutDxEntries(uint8_t* at, uint16_t limit,
                  const std::vector<std::pair<uint32_t, uint32_t>>& hash_block) {
  auto* cl = reinterpret_cast<ext2_dx_countlimit*>(at);
  cl->limit = ext2fs_cpu_to_le16(limit);
  cl->count = ext2fs_cpu_to_le16(static_cast<__u16>(hash_block.size()));
  auto* entries = reinterpret_cast<ext2_dx_entry*>(at);
  for (size_t i = 0; i < hash_block.size(); ++i) {
    if (i > 0) entries[i].hash = ext2fs_cpu_to_le32(hash_block[i].first);
    entries[i].block = ext2fs_cpu_to_le32(hash_block[i].second);
  }
}

class Ext4BuilderImpl final : public Ext4Builder {
 public:
  Ext4BuilderImpl() : stage_(new uint8_t[kStageBlocks * kBlockSize]) {}
  ~Ext4BuilderImpl() override;
  BOXLITE_DISALLOW_COPY(Ext4BuilderImpl);

  Status Init(const std::string& path, const Ext4BuildOptions& options);
  Result<LayerApplyResult> ApplyLayer(int fd) override;
  Status Finish() override;
  uint64_t UsedBytes() const override;

 private:
  enum class State { kOpen, kFailed, kFinished };

  // Formatting.
  Status Format(const std::string& path, const Ext4BuildOptions& options);
  Status WriteReservedInodes();

  // Layers and entries.
  Result<LayerApplyResult> DoApplyLayer(int fd);
  Status ApplyEntry(LayerStream* stream, struct archive_entry* e);
  Result<Meta> ReadMeta(struct archive_entry* e, std::string_view display);
  Status ApplyWhiteouts();
  Status Prune(DirNode* dir);

  // The in-memory tree.
  Result<DirNode*> ResolveDir(const CleanPath& path, size_t n, bool create,
                              const Timestamp& mtime, std::string_view display);
  DirNode* Dir(ext2_ino_t ino) const;
  Result<DirNode*> CreateDir(DirNode* parent, std::string_view name, Meta meta);
  void AddEntry(DirNode* dir, std::string_view name, Entry entry);
  Status RemoveEntry(DirNode* dir, ChildMap::iterator it);
  Status RemoveDirTree(ext2_ino_t ino);
  void MarkTouched(DirNode* dir);
  void AdjustDirBytes(DirNode* dir, int64_t delta);

  // Inodes.
  Result<ext2_ino_t> AllocInode(bool is_dir);
  Status WriteInode(ext2_ino_t ino, InodeBuf& buf);
  Status ReadInode(ext2_ino_t ino, InodeBuf& buf);
  void FillCommon(InodeBuf& buf, uint16_t type_bits, const Meta& meta, uint16_t links);
  Status WriteExtents(ext2_ino_t ino, InodeBuf& buf, const std::vector<Extent>& extents);
  Status SetXattrs(ext2_ino_t ino, const std::vector<Xattr>& xattrs);
  Status AddLink(ext2_ino_t ino);
  Status DropLink(ext2_ino_t ino);
  Status SetLinkCount(ext2_ino_t ino, uint32_t links);
  Status FreeInode(ext2_ino_t ino);

  // Data.
  Result<blk64_t> AllocBlocks(uint64_t want, uint64_t* got);
  Status WriteRun(uint64_t lblk, const uint8_t* data, uint64_t count,
                  std::vector<Extent>* extents);
  Status StageFlush(bool final, std::vector<Extent>* extents, uint64_t* blocks);
  Status WriteFileData(LayerStream* stream, uint64_t size, std::vector<Extent>* extents,
                       uint64_t* blocks);

  // Creation of non-directory inodes.
  Result<ext2_ino_t> CreateRegular(LayerStream* stream, struct archive_entry* e,
                                   const Meta& meta);
  Result<ext2_ino_t> CreateSymlink(std::string_view target, const Meta& meta);
  Result<ext2_ino_t> CreateSpecial(uint16_t type_bits, uint32_t major, uint32_t minor,
                                   const Meta& meta);

  // Finish.
  void LayoutLinear(const DirNode* dir, std::vector<uint8_t>* data);
  bool LayoutIndexed(const DirNode* dir, std::vector<uint8_t>* data);
  Status WriteDirectory(DirNode* dir);

  ext2_filsys fs_ = nullptr;
  State state_ = State::kOpen;
  uint32_t layer_ = 0;
  Timestamp now_;
  std::unordered_map<ext2_ino_t, std::unique_ptr<DirNode>> dirs_;
  DirNode* root_ = nullptr;
  std::unordered_map<ext2_ino_t, uint32_t> links_;           // Non-dirs with > 1 name.
  std::unordered_map<ext2_ino_t, std::string> symlinks_;     // Symlink targets.
  std::vector<PendingWhiteout> whiteouts_;
  uint64_t generation_ = 0;  // Bumped by every removal; invalidates the resolve cache.
  std::string cache_path_;
  ext2_ino_t cache_ino_ = 0;
  uint64_t cache_generation_ = ~uint64_t{0};
  ext2_ino_t inode_hint_ = EXT2_ROOT_INO;
  blk64_t data_goal_ = 0;
  uint64_t pending_dir_blocks_ = 0;
  uint64_t final_used_bytes_ = 0;
  uint64_t max_layer_stream_bytes_ = 0;
  bool sync_on_finish_ = true;
  BlockBatch batch_;
  std::unique_ptr<uint8_t[]> stage_;
  uint64_t stage_lblk_ = 0;  // Logical block of stage_[0].
  size_t stage_fill_ = 0;    // Bytes staged, from stage_[0].
};

// ---------------------------------------------------------------------------------------
// Formatting.

Ext4BuilderImpl::~Ext4BuilderImpl() {
  if (fs_ != nullptr) {
    // Not finished: the caller deletes the file, so nothing needs to reach the disk.
    fs_->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_BB_DIRTY | EXT2_FLAG_IB_DIRTY);
    ext2fs_close_free(&fs_);
  }
}

Status Ext4BuilderImpl::Init(const std::string& path, const Ext4BuildOptions& options) {
  InitErrorTable();
  if (options.size_bytes == 0 || options.size_bytes % kBlockSize != 0) {
    return Status::InvalidArgument("ext4 image size must be a positive multiple of 4096",
                                   std::to_string(options.size_bytes));
  }
  if (options.size_bytes < (8u << 20)) {
    return Status::InvalidArgument("ext4 image size must be at least 8 MiB",
                                   std::to_string(options.size_bytes));
  }
  if (options.size_bytes / kBlockSize >= (1ull << 48)) {
    return Status::InvalidArgument("ext4 image size too large",
                                   std::to_string(options.size_bytes));
  }
  {
    base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return sys::ErrnoStatus(errno, "create %s", path.c_str());
    if (::ftruncate(fd.get(), static_cast<off_t>(options.size_bytes)) != 0) {
      return sys::ErrnoStatus(errno, "size %s", path.c_str());
    }
  }
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  now_ = Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
  max_layer_stream_bytes_ = options.max_layer_stream_bytes != 0
                               ? options.max_layer_stream_bytes
                               : options.size_bytes * kStreamBudgetFactor + kStreamBudgetSlack;
  sync_on_finish_ = options.sync_on_finish;
  BOXLITE_RETURN_IF_ERROR(Format(path, options));
  batch_.set_fs(fs_);

  Meta root_meta;
  root_meta.atime = root_meta.mtime = root_meta.ctime = now_;
  auto root = std::make_unique<DirNode>();
  root->ino = EXT2_ROOT_INO;
  root->parent = root.get();
  root->meta = root_meta;
  root_ = root.get();
  pending_dir_blocks_ += DirBlocksFor(*root);
  dirs_.emplace(EXT2_ROOT_INO, std::move(root));

  Meta lpf_meta = root_meta;
  lpf_meta.perm = 0700;
  BOXLITE_ASSIGN_OR_RETURN(DirNode * lpf, CreateDir(root_, "lost+found", lpf_meta));
  // e2fsck wants room to reconnect orphans without allocating; mke2fs makes it 16 KiB.
  pending_dir_blocks_ -= DirBlocksFor(*lpf);
  lpf->min_blocks = 4;
  pending_dir_blocks_ += DirBlocksFor(*lpf);
  return Status::OK();
}

Status Ext4BuilderImpl::Format(const std::string& path, const Ext4BuildOptions& options) {
  struct ext2_super_block param;
  std::memset(&param, 0, sizeof(param));
  uint64_t blocks = options.size_bytes / kBlockSize;
  ext2fs_blocks_count_set(&param, blocks);
  param.s_log_block_size = 2;  // 1024 << 2.
  param.s_rev_level = EXT2_DYNAMIC_REV;
  param.s_inode_size = kInodeSize;
  param.s_log_groups_per_flex = 4;
  param.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
  uint64_t inodes = options.inode_count;
  if (inodes == 0) inodes = std::max<uint64_t>(options.size_bytes / kBytesPerInode, 1024);
  if (inodes > UINT32_MAX) {
    return Status::InvalidArgument("too many inodes requested", std::to_string(inodes));
  }
  param.s_inodes_count = static_cast<uint32_t>(inodes);
  ext2fs_set_feature_xattr(&param);
  ext2fs_set_feature_resize_inode(&param);
  ext2fs_set_feature_dir_index(&param);
  ext2fs_set_feature_filetype(&param);
  ext2fs_set_feature_extents(&param);
  ext2fs_set_feature_64bit(&param);
  ext2fs_set_feature_flex_bg(&param);
  ext2fs_set_feature_sparse_super(&param);
  ext2fs_set_feature_large_file(&param);
  ext2fs_set_feature_huge_file(&param);
  ext2fs_set_feature_dir_nlink(&param);
  ext2fs_set_feature_extra_isize(&param);
  ext2fs_set_feature_metadata_csum(&param);

  errcode_t err = ext2fs_initialize(path.c_str(), EXT2_FLAG_64BITS, &param, unix_io_manager,
                                    &fs_);
  if (err != 0) {
    fs_ = nullptr;
    if (err == EXT2_ET_TOOSMALL || err == EXT2_ET_TOO_MANY_INODES) {
      return Status::InvalidArgument("format ext4", error_message(err));
    }
    return Ext2Error(err, "format ext4");
  }
  ext2_super_block* sb = fs_->super;
  if (getrandom(sb->s_uuid, sizeof(sb->s_uuid), 0) != sizeof(sb->s_uuid) ||
      getrandom(sb->s_hash_seed, sizeof(sb->s_hash_seed), 0) != sizeof(sb->s_hash_seed)) {
    return sys::ErrnoStatus(errno, "getrandom");
  }
  sb->s_uuid[6] = static_cast<uint8_t>((sb->s_uuid[6] & 0x0f) | 0x40);  // RFC 4122 v4.
  sb->s_uuid[8] = static_cast<uint8_t>((sb->s_uuid[8] & 0x3f) | 0x80);
  ext2fs_init_csum_seed(fs_);
  sb->s_def_hash_version = EXT2_HASH_HALF_MD4;
  sb->s_max_mnt_count = static_cast<__s16>(-1);
  sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
  sb->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
  sb->s_kbytes_written = 1;
  std::memset(sb->s_volume_name, 0, sizeof(sb->s_volume_name));
  std::memcpy(sb->s_volume_name, options.label.data(),
              std::min(options.label.size(), sizeof(sb->s_volume_name)));

  err = ext2fs_allocate_tables(fs_);
  if (err != 0) return Ext2Error(err, "allocate ext4 group tables");
  // The file was created empty, so every inode table already reads as zeros: tell the
  // guest kernel not to zero them again (that would write them all into the overlay).
  for (dgrp_t g = 0; g < fs_->group_desc_count; ++g) {
    ext2fs_bg_flags_set(fs_, g, EXT2_BG_INODE_ZEROED);
    ext2fs_group_desc_csum_set(fs_, g);
  }
  BOXLITE_RETURN_IF_ERROR(WriteReservedInodes());
  ext2fs_inode_alloc_stats2(fs_, EXT2_ROOT_INO, +1, 1);
  for (ext2_ino_t ino = EXT2_ROOT_INO + 1; ino < EXT2_FIRST_INODE(sb); ++ino) {
    ext2fs_inode_alloc_stats2(fs_, ino, +1, 0);
  }
  ext2fs_inode_alloc_stats2(fs_, EXT2_BAD_INO, +1, 0);
  err = ext2fs_update_bb_inode(fs_, nullptr);
  if (err != 0) return Ext2Error(err, "write the bad-blocks inode");
  err = ext2fs_create_resize_inode(fs_);
  if (err != 0) return Ext2Error(err, "reserve blocks for online resize");

  struct ext2fs_journal_params jparams;
  if (ext2fs_get_journal_params(&jparams, fs_) == 0 && jparams.num_journal_blocks > 0) {
    err = ext2fs_add_journal_inode3(fs_, &jparams, ~0ULL,
                                    EXT2_MKJOURNAL_LAZYINIT | EXT2_MKJOURNAL_NO_MNT_CHECK);
    if (err != 0) return Ext2Error(err, "create the journal");
  }
  return Status::OK();
}

Status Ext4BuilderImpl::WriteReservedInodes() {
  InodeBuf zero;
  for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INODE(fs_->super); ++ino) {
    BOXLITE_RETURN_IF_ERROR(WriteInode(ino, zero));
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// Layers.

Result<LayerApplyResult> Ext4BuilderImpl::ApplyLayer(int fd) {
  if (state_ != State::kOpen) {
    return Status::FailedPrecondition(state_ == State::kFailed
                                          ? "ext4 builder failed earlier"
                                          : "ext4 builder already finished");
  }
  Result<LayerApplyResult> r = DoApplyLayer(fd);
  if (!r.ok()) state_ = State::kFailed;
  return r;
}

Result<LayerApplyResult> Ext4BuilderImpl::DoApplyLayer(int fd) {
  ++layer_;
  whiteouts_.clear();
  // A layer may legitimately stream more than it stores (zero-filled files become holes),
  // but not unboundedly more: past this the caller retries with a larger image.
  uint64_t budget = max_layer_stream_bytes_;
  BOXLITE_ASSIGN_OR_RETURN(std::unique_ptr<LayerStream> stream, LayerStream::Open(fd, budget));
  uint64_t entries = 0;
  std::string last;  // Start of the previous entry's name, for messages.
  for (;;) {
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(stream->tar(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return stream->TarError(entries == 0
                                  ? std::string("read the first tar header")
                                  : "read the tar header after entry " + Quote(last));
    }
    ++entries;
    const char* name = archive_entry_pathname(e);
    last.assign(name != nullptr ? name : "", name != nullptr ? strnlen(name, 200) : 0);
    BOXLITE_RETURN_IF_ERROR(ApplyEntry(stream.get(), e));
    // Names are cheap to add (hardlinks allocate nothing) but each needs directory space
    // in Finish(): stop as soon as they could no longer be written.
    if (pending_dir_blocks_ > ext2fs_free_blocks_count(fs_->super)) {
      return Status::ResourceExhausted(
          "entry " + Quote(last), "directory entries no longer fit (the file system is full)");
    }
  }
  BOXLITE_RETURN_IF_ERROR(ApplyWhiteouts());
  BOXLITE_RETURN_IF_ERROR(stream->Drain());
  LayerApplyResult result;
  result.diff_id = stream->diff_id();
  result.uncompressed_bytes = stream->uncompressed_bytes();
  result.entries = entries;
  return result;
}

Result<Meta> Ext4BuilderImpl::ReadMeta(struct archive_entry* e, std::string_view display) {
  Meta m;
  m.perm = static_cast<uint32_t>(archive_entry_perm(e)) & 07777;
  int64_t uid = archive_entry_uid(e);
  int64_t gid = archive_entry_gid(e);
  if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX) {
    return Status::Corruption(
        base::StrFormat("entry %.*s", static_cast<int>(display.size()), display.data()),
        base::StrFormat("owner %lld:%lld out of range", static_cast<long long>(uid),
                        static_cast<long long>(gid)));
  }
  m.uid = static_cast<uint32_t>(uid);
  m.gid = static_cast<uint32_t>(gid);
  auto nsec = [](long ns) { return ns >= 0 && ns < 1000000000 ? static_cast<uint32_t>(ns) : 0u; };
  m.mtime = Timestamp{archive_entry_mtime(e), nsec(archive_entry_mtime_nsec(e))};
  m.atime = archive_entry_atime_is_set(e)
                ? Timestamp{archive_entry_atime(e), nsec(archive_entry_atime_nsec(e))}
                : m.mtime;
  m.ctime = archive_entry_ctime_is_set(e)
                ? Timestamp{archive_entry_ctime(e), nsec(archive_entry_ctime_nsec(e))}
                : m.mtime;

  bool have_acl_access = false;
  bool have_acl_default = false;
  archive_entry_xattr_reset(e);
  const char* xname = nullptr;
  const void* xvalue = nullptr;
  size_t xsize = 0;
  while (archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
    std::string_view name = xname != nullptr ? xname : "";
    bool known = false;
    for (std::string_view prefix : {"user.", "trusted.", "security."}) {
      if (name.starts_with(prefix) && name.size() > prefix.size()) known = true;
    }
    if (name == "system.posix_acl_access") known = have_acl_access = true;
    if (name == "system.posix_acl_default") known = have_acl_default = true;
    if (!known || name.size() - name.find('.') - 1 > kMaxNameBytes) {
      // Docker skips attributes the file system cannot take; so do we.
      BOXLITE_LOG(kDebug, "ext4: entry %s: skipping xattr %s", std::string(display).c_str(),
                  Quote(name).c_str());
      continue;
    }
    if (xsize + name.size() > kBlockSize - 64) {
      return Status::Corruption(
          base::StrFormat("entry %.*s", static_cast<int>(display.size()), display.data()),
          base::StrFormat("xattr %s of %zu bytes does not fit in an ext4 block",
                          Quote(name).c_str(), xsize));
    }
    m.xattrs.push_back(Xattr{std::string(name),
                             std::string(static_cast<const char*>(xvalue), xsize)});
  }

  // POSIX ACLs from SCHILY.acl.* headers (GNU tar, bsdtar) become the same xattrs the
  // kernel would store.
  for (int type : {ARCHIVE_ENTRY_ACL_TYPE_ACCESS, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT}) {
    bool is_access = type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS;
    if ((is_access && have_acl_access) || (!is_access && have_acl_default)) continue;
    if (archive_entry_acl_reset(e, type) <= 0) continue;
    struct AclEntry {
      uint16_t tag;
      uint16_t perm;
      uint32_t id;
    };
    std::vector<AclEntry> acl;
    int etype = 0, permset = 0, tag = 0, qual = 0;
    const char* qname = nullptr;
    while (archive_entry_acl_next(e, type, &etype, &permset, &tag, &qual, &qname) ==
           ARCHIVE_OK) {
      AclEntry a{0, static_cast<uint16_t>(permset & 7), 0xffffffffu};
      switch (tag) {
        case ARCHIVE_ENTRY_ACL_USER_OBJ: a.tag = 0x01; break;
        case ARCHIVE_ENTRY_ACL_USER: a.tag = 0x02; a.id = static_cast<uint32_t>(qual); break;
        case ARCHIVE_ENTRY_ACL_GROUP_OBJ: a.tag = 0x04; break;
        case ARCHIVE_ENTRY_ACL_GROUP: a.tag = 0x08; a.id = static_cast<uint32_t>(qual); break;
        case ARCHIVE_ENTRY_ACL_MASK: a.tag = 0x10; break;
        case ARCHIVE_ENTRY_ACL_OTHER: a.tag = 0x20; break;
        default: continue;
      }
      acl.push_back(a);
    }
    if (acl.empty()) continue;
    std::sort(acl.begin(), acl.end(), [](const AclEntry& x, const AclEntry& y) {
      return x.tag != y.tag ? x.tag < y.tag : x.id < y.id;
    });
    std::string value(4 + 8 * acl.size(), '\0');
    uint32_t version = 2;  // POSIX_ACL_XATTR_VERSION, little endian like the kernel's.
    std::memcpy(value.data(), &version, 4);
    for (size_t i = 0; i < acl.size(); ++i) {
      std::memcpy(value.data() + 4 + 8 * i, &acl[i].tag, 2);
      std::memcpy(value.data() + 6 + 8 * i, &acl[i].perm, 2);
      std::memcpy(value.data() + 8 + 8 * i, &acl[i].id, 4);
    }
    m.xattrs.push_back(
        Xattr{is_access ? "system.posix_acl_access" : "system.posix_acl_default", value});
  }
  // Directory xattrs are written in Finish(); keep the name for its error messages.
  if (!m.xattrs.empty()) m.origin = std::string(display);
  return m;
}

Status Ext4BuilderImpl::ApplyEntry(LayerStream* stream, struct archive_entry* e) {
  const char* raw_name = archive_entry_pathname(e);
  if (raw_name == nullptr) return Status::Corruption("tar entry without a name");
  std::string_view raw(raw_name);
  std::string display = Quote(raw);
  auto bad = [&](std::string_view what) {
    return Status::Corruption("entry " + display, what);
  };
  Result<CleanPath> cleaned = CleanTarPath(raw);
  if (!cleaned.ok()) return bad(cleaned.error().message());
  const CleanPath& path = *cleaned;

  // AUFS metadata (".wh..wh.plnk" and friends) is skipped, as Docker does.
  const bool has_wh = path.str().find(".wh.") != std::string::npos;
  for (size_t i = 0; has_wh && i < path.size(); ++i) {
    std::string_view c = path.component(i);
    if (c.starts_with(".wh..wh.") && !(i + 1 == path.size() && c == ".wh..wh..opq")) {
      return Status::OK();
    }
    if (i + 1 < path.size() && c.starts_with(".wh.")) {
      return bad("whiteout prefix in a directory component");
    }
  }
  if (has_wh && !path.empty() && path.base().starts_with(".wh.")) {
    std::string_view base = path.base();
    PendingWhiteout w;
    w.parent = std::string(path.prefix(path.size() - 1));
    w.display = display;
    if (base != ".wh..wh..opq") {
      std::string_view target = base.substr(4);
      if (target.empty() || target == "." || target == "..") {
        return bad("whiteout of an invalid name");
      }
      w.name = std::string(target);
    }
    // Each pending whiteout costs memory; a layer cannot sensibly remove more names than
    // the file system can hold.
    if (whiteouts_.size() >= 2 * uint64_t{fs_->super->s_inodes_count} + 65536) {
      return Status::ResourceExhausted("entry " + display, "too many whiteouts in one layer");
    }
    whiteouts_.push_back(std::move(w));
    return Status::OK();
  }

  BOXLITE_ASSIGN_OR_RETURN(Meta meta, ReadMeta(e, display));
  const char* hardlink = archive_entry_hardlink(e);
  mode_t type = archive_entry_filetype(e);

  if (path.empty()) {
    if (hardlink != nullptr || type != AE_IFDIR) {
      return bad("a non-directory entry cannot replace the image root");
    }
    root_->meta = std::move(meta);
    MarkTouched(root_);
    return Status::OK();
  }

  BOXLITE_ASSIGN_OR_RETURN(DirNode * parent,
                           ResolveDir(path, path.size() - 1, true, meta.mtime, display));
  std::string_view name = path.base();

  if (hardlink != nullptr) {
    Result<CleanPath> target = CleanTarPath(hardlink);
    if (!target.ok()) return bad("hardlink target: " + target.error().message());
    if (target->empty()) return bad("hardlink to the image root");
    Result<DirNode*> tdir =
        ResolveDir(*target, target->size() - 1, false, meta.mtime, display);
    if (!tdir.ok()) {
      if (tdir.error().IsNotFound()) {
        return bad("hardlink target " + Quote(hardlink) + " does not exist");
      }
      return tdir.error();
    }
    auto tit = (*tdir)->children.find(target->base());
    if (tit == (*tdir)->children.end()) {
      return bad("hardlink target " + Quote(hardlink) + " does not exist");
    }
    Entry linked = tit->second;
    if (linked.type == EXT2_FT_DIR) return bad("hardlink to a directory");
    // Count the new name first: replacing the target by a link to itself keeps it alive.
    BOXLITE_RETURN_IF_ERROR(AddLink(linked.ino).Wrap("entry " + display));
    auto it = parent->children.find(name);
    if (it != parent->children.end()) BOXLITE_RETURN_IF_ERROR(RemoveEntry(parent, it));
    linked.layer = layer_;
    AddEntry(parent, name, linked);
    return Status::OK();
  }

  auto existing = parent->children.find(name);
  if (type == AE_IFDIR) {
    if (existing != parent->children.end() && existing->second.type == EXT2_FT_DIR) {
      DirNode* dir = Dir(existing->second.ino);
      dir->meta = std::move(meta);
      existing->second.layer = layer_;
      MarkTouched(dir);
      return Status::OK();
    }
    if (existing != parent->children.end()) {
      BOXLITE_RETURN_IF_ERROR(RemoveEntry(parent, existing));
    }
    BOXLITE_ASSIGN_OR_RETURN(DirNode * dir, CreateDir(parent, name, std::move(meta)));
    // The next entry is most likely inside this directory.
    cache_path_ = path.str();
    cache_ino_ = dir->ino;
    cache_generation_ = generation_;
    return Status::OK();
  }

  uint8_t ft = 0;
  switch (type) {
    case AE_IFREG: ft = EXT2_FT_REG_FILE; break;
    case AE_IFLNK: ft = EXT2_FT_SYMLINK; break;
    case AE_IFCHR: ft = EXT2_FT_CHRDEV; break;
    case AE_IFBLK: ft = EXT2_FT_BLKDEV; break;
    case AE_IFIFO: ft = EXT2_FT_FIFO; break;
    case AE_IFSOCK:
      BOXLITE_LOG(kDebug, "ext4: skipping socket entry %s", display.c_str());
      return Status::OK();
    default:
      return bad(base::StrFormat("unsupported entry type 0%o", static_cast<unsigned>(type)));
  }
  if (ft == EXT2_FT_SYMLINK) {
    const char* t = archive_entry_symlink(e);
    std::string_view target = t != nullptr ? t : "";
    if (target.empty()) return bad("symlink with an empty target");
    if (target.size() > kMaxSymlinkBytes) {
      return bad(base::StrFormat("symlink target longer than %zu bytes", kMaxSymlinkBytes));
    }
  }
  uint32_t major = 0, minor = 0;
  if (ft == EXT2_FT_CHRDEV || ft == EXT2_FT_BLKDEV) {
    major = static_cast<uint32_t>(archive_entry_rdevmajor(e));
    minor = static_cast<uint32_t>(archive_entry_rdevminor(e));
    if (major >= (1u << 12) || minor >= (1u << 20)) {
      return bad(base::StrFormat("device number %u:%u out of range", major, minor));
    }
  }
  // Replace what is there first, so its blocks and inode can be reused.
  if (existing != parent->children.end()) {
    BOXLITE_RETURN_IF_ERROR(RemoveEntry(parent, existing));
  }
  Result<ext2_ino_t> ino = Status::Internal("unreachable");
  switch (ft) {
    case EXT2_FT_REG_FILE: ino = CreateRegular(stream, e, meta); break;
    case EXT2_FT_SYMLINK: ino = CreateSymlink(archive_entry_symlink(e), meta); break;
    case EXT2_FT_CHRDEV: ino = CreateSpecial(LINUX_S_IFCHR, major, minor, meta); break;
    case EXT2_FT_BLKDEV: ino = CreateSpecial(LINUX_S_IFBLK, major, minor, meta); break;
    default: ino = CreateSpecial(LINUX_S_IFIFO, 0, 0, meta); break;
  }
  if (!ino.ok()) return ino.error().Wrap("entry " + display);
  if (ft == EXT2_FT_SYMLINK) symlinks_[*ino] = archive_entry_symlink(e);
  AddEntry(parent, name, Entry{*ino, ft, layer_});
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// Whiteouts.

Status Ext4BuilderImpl::ApplyWhiteouts() {
  for (const PendingWhiteout& w : whiteouts_) {
    Result<CleanPath> parent_path = CleanTarPath(w.parent);
    if (!parent_path.ok()) continue;
    Result<DirNode*> parent =
        ResolveDir(*parent_path, parent_path->size(), false, Timestamp{}, w.display);
    // A whiteout below something that does not exist (or is not a directory) has
    // nothing to remove.
    if (!parent.ok()) continue;
    DirNode* dir = *parent;
    if (w.name.empty()) {
      BOXLITE_RETURN_IF_ERROR(Prune(dir).Wrap("whiteout " + w.display));
      continue;
    }
    auto it = dir->children.find(w.name);
    if (it == dir->children.end()) continue;
    const Entry& victim = it->second;
    if (victim.layer == layer_ || victim.layer == kBaseLayer) continue;
    if (victim.type == EXT2_FT_DIR && Dir(victim.ino)->touched_layer == layer_) {
      // This layer also put something below it: keep that, drop what lower layers had.
      BOXLITE_RETURN_IF_ERROR(Prune(Dir(victim.ino)).Wrap("whiteout " + w.display));
      continue;
    }
    BOXLITE_RETURN_IF_ERROR(RemoveEntry(dir, it).Wrap("whiteout " + w.display));
  }
  whiteouts_.clear();
  return Status::OK();
}

// Removes everything below `top` that lower layers brought, keeping what this layer added
// and the directories leading to it.
Status Ext4BuilderImpl::Prune(DirNode* top) {
  std::vector<DirNode*> stack{top};
  std::vector<std::string> doomed;
  while (!stack.empty()) {
    DirNode* dir = stack.back();
    stack.pop_back();
    doomed.clear();
    for (auto& [name, entry] : dir->children) {
      if (entry.layer == kBaseLayer) continue;
      bool is_dir = entry.type == EXT2_FT_DIR;
      if (entry.layer == layer_ || (is_dir && Dir(entry.ino)->touched_layer == layer_)) {
        if (is_dir) stack.push_back(Dir(entry.ino));
        continue;
      }
      doomed.push_back(name);
    }
    for (const std::string& name : doomed) {
      BOXLITE_RETURN_IF_ERROR(RemoveEntry(dir, dir->children.find(name)));
    }
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// The in-memory tree.

DirNode* Ext4BuilderImpl::Dir(ext2_ino_t ino) const {
  auto it = dirs_.find(ino);
  BOXLITE_CHECK(it != dirs_.end());
  return it->second.get();
}

Result<DirNode*> Ext4BuilderImpl::ResolveDir(const CleanPath& path, size_t n, bool create,
                                             const Timestamp& mtime,
                                             std::string_view display) {
  std::string_view key = path.prefix(n);
  if (key.empty()) return root_;
  if (cache_generation_ == generation_ && key == cache_path_) return Dir(cache_ino_);

  // Components still to walk, last first.
  std::vector<std::string_view> todo;
  todo.reserve(n);
  for (size_t i = n; i-- > 0;) todo.push_back(path.component(i));
  int hops = 0;
  DirNode* cur = root_;
  auto fail = [&](std::string_view what) {
    return Status::Corruption(base::StrFormat("entry %.*s", static_cast<int>(display.size()),
                                              display.data()),
                              what);
  };
  while (!todo.empty()) {
    std::string_view c = todo.back();
    todo.pop_back();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      cur = cur->parent;  // The root is its own parent: ".." never leaves the image.
      continue;
    }
    if (c.size() > kMaxNameBytes) return fail("symlink target component too long");
    auto it = cur->children.find(c);
    if (it == cur->children.end()) {
      if (!create) return Status::NotFound("path component", c);
      Meta meta;
      meta.atime = meta.mtime = meta.ctime = mtime;
      BOXLITE_ASSIGN_OR_RETURN(cur, CreateDir(cur, c, std::move(meta)));
      continue;
    }
    const Entry& entry = it->second;
    if (entry.type == EXT2_FT_DIR) {
      cur = Dir(entry.ino);
      continue;
    }
    if (entry.type != EXT2_FT_SYMLINK) {
      if (!create) return Status::NotFound("not a directory", c);
      return fail("a parent component " + Quote(c) + " is not a directory");
    }
    if (++hops > kMaxSymlinkHops) {
      if (!create) return Status::NotFound("too many levels of symbolic links", c);
      return fail("too many levels of symbolic links");
    }
    // Views into symlinks_ stay valid: nothing is removed while a path is resolved.
    auto link = symlinks_.find(entry.ino);
    BOXLITE_CHECK(link != symlinks_.end());
    std::string_view target = link->second;
    if (target[0] == '/') cur = root_;
    std::vector<std::string_view> parts;
    size_t pos = 0;
    while (pos <= target.size()) {
      size_t slash = target.find('/', pos);
      if (slash == std::string_view::npos) slash = target.size();
      parts.push_back(target.substr(pos, slash - pos));
      pos = slash + 1;
    }
    for (size_t i = parts.size(); i-- > 0;) todo.push_back(parts[i]);
  }
  cache_path_.assign(key);
  cache_ino_ = cur->ino;
  cache_generation_ = generation_;
  return cur;
}

Result<DirNode*> Ext4BuilderImpl::CreateDir(DirNode* parent, std::string_view name,
                                            Meta meta) {
  BOXLITE_ASSIGN_OR_RETURN(ext2_ino_t ino, AllocInode(true));
  auto dir = std::make_unique<DirNode>();
  dir->ino = ino;
  dir->parent = parent;
  dir->meta = std::move(meta);
  DirNode* raw = dir.get();
  pending_dir_blocks_ += DirBlocksFor(*raw);
  dirs_.emplace(ino, std::move(dir));
  AddEntry(parent, name, Entry{ino, EXT2_FT_DIR, layer_});
  raw->touched_layer = layer_;
  return raw;
}

void Ext4BuilderImpl::AddEntry(DirNode* dir, std::string_view name, Entry entry) {
  if (entry.type == EXT2_FT_DIR) ++dir->subdirs;
  dir->children.emplace(std::string(name), entry);
  AdjustDirBytes(dir, RecLen(name.size()));
  MarkTouched(dir);
}

void Ext4BuilderImpl::AdjustDirBytes(DirNode* dir, int64_t delta) {
  pending_dir_blocks_ -= DirBlocksFor(*dir);
  dir->dirent_bytes = static_cast<uint64_t>(static_cast<int64_t>(dir->dirent_bytes) + delta);
  pending_dir_blocks_ += DirBlocksFor(*dir);
}

void Ext4BuilderImpl::MarkTouched(DirNode* dir) {
  while (dir->touched_layer != layer_) {
    dir->touched_layer = layer_;
    dir = dir->parent;
  }
}

Status Ext4BuilderImpl::RemoveEntry(DirNode* dir, ChildMap::iterator it) {
  Entry entry = it->second;
  AdjustDirBytes(dir, -static_cast<int64_t>(RecLen(it->first.size())));
  dir->children.erase(it);
  ++generation_;
  if (entry.type == EXT2_FT_DIR) {
    --dir->subdirs;
    return RemoveDirTree(entry.ino);
  }
  return DropLink(entry.ino);
}

Status Ext4BuilderImpl::RemoveDirTree(ext2_ino_t top) {
  std::vector<ext2_ino_t> stack{top};
  while (!stack.empty()) {
    ext2_ino_t ino = stack.back();
    stack.pop_back();
    auto it = dirs_.find(ino);
    BOXLITE_CHECK(it != dirs_.end());
    DirNode* dir = it->second.get();
    for (const auto& [name, entry] : dir->children) {
      if (entry.type == EXT2_FT_DIR) {
        stack.push_back(entry.ino);
      } else {
        BOXLITE_RETURN_IF_ERROR(DropLink(entry.ino));
      }
    }
    pending_dir_blocks_ -= DirBlocksFor(*dir);
    // Directories reach the disk only in Finish(): there is nothing to free but the number.
    ext2fs_inode_alloc_stats2(fs_, ino, -1, 1);
    dirs_.erase(it);
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// Inodes.

Result<ext2_ino_t> Ext4BuilderImpl::AllocInode(bool is_dir) {
  ext2_ino_t ino = 0;
  // The hint only selects the group where the search starts: start where the last
  // allocation ended instead of rescanning full groups every time.
  errcode_t err = ext2fs_new_inode(fs_, inode_hint_, 0, nullptr, &ino);
  if (err != 0) {
    return Status::ResourceExhausted("allocate an inode",
                                     "no free inodes left (the file system is full)");
  }
  ext2fs_inode_alloc_stats2(fs_, ino, +1, is_dir ? 1 : 0);
  inode_hint_ = ino;
  return ino;
}

Status Ext4BuilderImpl::WriteInode(ext2_ino_t ino, InodeBuf& buf) {
  errcode_t err = ext2fs_write_inode_full(fs_, ino, buf.small(), kInodeSize);
  if (err != 0) return Ext2Error(err, base::StrFormat("write inode %u", ino));
  return Status::OK();
}

Status Ext4BuilderImpl::ReadInode(ext2_ino_t ino, InodeBuf& buf) {
  errcode_t err = ext2fs_read_inode_full(fs_, ino, buf.small(), kInodeSize);
  if (err != 0) return Ext2Error(err, base::StrFormat("read inode %u", ino));
  return Status::OK();
}

void Ext4BuilderImpl::FillCommon(InodeBuf& buf, uint16_t type_bits, const Meta& meta,
                                 uint16_t links) {
  ext2_inode_large* in = buf.large();
  in->i_mode = static_cast<__u16>(type_bits | (meta.perm & 07777));
  in->i_uid = static_cast<__u16>(meta.uid & 0xffff);
  ext2fs_set_i_uid_high(*in, static_cast<__u16>(meta.uid >> 16));
  in->i_gid = static_cast<__u16>(meta.gid & 0xffff);
  ext2fs_set_i_gid_high(*in, static_cast<__u16>(meta.gid >> 16));
  in->i_links_count = links;
  in->i_extra_isize = sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  EncodeTime(meta.atime, &in->i_atime, &in->i_atime_extra);
  EncodeTime(meta.mtime, &in->i_mtime, &in->i_mtime_extra);
  EncodeTime(meta.ctime, &in->i_ctime, &in->i_ctime_extra);
  EncodeTime(meta.ctime, &in->i_crtime, &in->i_crtime_extra);
}

Status Ext4BuilderImpl::WriteExtents(ext2_ino_t ino, InodeBuf& buf,
                                     const std::vector<Extent>& extents) {
  ext2_inode_large* in = buf.large();
  in->i_flags |= EXT4_EXTENTS_FL;
  std::memset(in->i_block, 0, sizeof(in->i_block));
  auto* eh = reinterpret_cast<ext3_extent_header*>(in->i_block);
  eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
  eh->eh_max = ext2fs_cpu_to_le16(
      (sizeof(in->i_block) - sizeof(ext3_extent_header)) / sizeof(ext3_extent));
  eh->eh_depth = 0;
  if (extents.size() <= 4) {
    eh->eh_entries = ext2fs_cpu_to_le16(static_cast<__u16>(extents.size()));
    auto* ee = reinterpret_cast<ext3_extent*>(eh + 1);
    for (size_t i = 0; i < extents.size(); ++i) {
      ee[i].ee_block = ext2fs_cpu_to_le32(static_cast<__u32>(extents[i].lblk));
      ee[i].ee_len = ext2fs_cpu_to_le16(static_cast<__u16>(extents[i].len));
      ee[i].ee_start_hi = ext2fs_cpu_to_le16(static_cast<__u16>(extents[i].pblk >> 32));
      ee[i].ee_start = ext2fs_cpu_to_le32(static_cast<__u32>(extents[i].pblk));
    }
    return WriteInode(ino, buf);
  }
  // A real tree: libext2fs splits nodes and writes index blocks. Its partial inode
  // writes merge with what is on disk, so put the whole inode there first.
  eh->eh_entries = 0;
  BOXLITE_RETURN_IF_ERROR(WriteInode(ino, buf));
  ext2_extent_handle_t handle = nullptr;
  errcode_t err = ext2fs_extent_open2(fs_, ino, buf.small(), &handle);
  if (err != 0) return Ext2Error(err, "open extent tree");
  for (size_t i = 0; i < extents.size() && err == 0; ++i) {
    struct ext2fs_extent ext {};
    ext.e_lblk = extents[i].lblk;
    ext.e_pblk = extents[i].pblk;
    ext.e_len = extents[i].len;
    err = ext2fs_extent_insert(handle, i == 0 ? 0 : EXT2_EXTENT_INSERT_AFTER, &ext);
    if (err == 0) err = ext2fs_extent_fix_parents(handle);
  }
  ext2fs_extent_free(handle);
  if (err != 0) return Ext2Error(err, "build extent tree");
  return WriteInode(ino, buf);
}

Status Ext4BuilderImpl::SetXattrs(ext2_ino_t ino, const std::vector<Xattr>& xattrs) {
  if (xattrs.empty()) return Status::OK();
  struct ext2_xattr_handle* h = nullptr;
  errcode_t err = ext2fs_xattrs_open(fs_, ino, &h);
  if (err != 0) return Ext2Error(err, "open xattrs");
  err = ext2fs_xattrs_read(h);
  for (size_t i = 0; i < xattrs.size() && err == 0; ++i) {
    const Xattr& x = xattrs[i];
    err = ext2fs_xattr_set(h, x.name.c_str(), x.value.data(), x.value.size());
    if (err == EXT2_ET_EA_NO_SPACE || err == EXT2_ET_EA_KEY_NOT_FOUND ||
        err == EXT2_ET_INVALID_ARGUMENT || err == EINVAL) {
      ext2fs_xattrs_close(&h);
      return Status::Corruption(
          "xattr " + Quote(x.name),
          base::StrFormat("%s (%zu bytes)", error_message(err), x.value.size()));
    }
  }
  errcode_t close_err = ext2fs_xattrs_close(&h);
  if (err == 0) err = close_err;
  if (err != 0) return Ext2Error(err, "write xattrs");
  return Status::OK();
}

Status Ext4BuilderImpl::SetLinkCount(ext2_ino_t ino, uint32_t links) {
  InodeBuf buf;
  BOXLITE_RETURN_IF_ERROR(ReadInode(ino, buf));
  buf.large()->i_links_count = static_cast<__u16>(links);
  return WriteInode(ino, buf);
}

Status Ext4BuilderImpl::AddLink(ext2_ino_t ino) {
  auto it = links_.find(ino);
  uint32_t count = it == links_.end() ? 1 : it->second;
  if (count >= kMaxFileLinks) {
    return Status::Corruption("hardlink", base::StrFormat("more than %u links to one file",
                                                          kMaxFileLinks));
  }
  links_[ino] = count + 1;
  return SetLinkCount(ino, count + 1);
}

Status Ext4BuilderImpl::DropLink(ext2_ino_t ino) {
  auto it = links_.find(ino);
  if (it != links_.end()) {
    uint32_t count = --it->second;
    if (count <= 1) links_.erase(it);
    return SetLinkCount(ino, count);
  }
  symlinks_.erase(ino);
  return FreeInode(ino);
}

Status Ext4BuilderImpl::FreeInode(ext2_ino_t ino) {
  // Nothing that is about to be freed may still sit in the batch: libext2fs could hand
  // the block out again as metadata before the batch reaches the disk.
  BOXLITE_RETURN_IF_ERROR(batch_.Flush());
  InodeBuf buf;
  BOXLITE_RETURN_IF_ERROR(ReadInode(ino, buf));
  ext2_inode_large* in = buf.large();
  const blk64_t first = fs_->super->s_first_data_block;
  const blk64_t count = ext2fs_blocks_count(fs_->super);
  auto valid = [&](blk64_t b, uint64_t n) { return b >= first && n <= count && b <= count - n; };
  if (in->i_flags & EXT4_EXTENTS_FL) {
    // Walk the tree ourselves: ext2fs_punch() refuses extents that end on the last block.
    ext2_extent_handle_t handle = nullptr;
    errcode_t err = ext2fs_extent_open2(fs_, ino, buf.small(), &handle);
    if (err != 0) return Ext2Error(err, "open extent tree");
    struct ext2fs_extent ext {};
    err = ext2fs_extent_get(handle, EXT2_EXTENT_ROOT, &ext);
    while (err == 0) {
      if (!(ext.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT)) {
        bool leaf = ext.e_flags & EXT2_EXTENT_FLAGS_LEAF;
        uint64_t n = leaf ? ext.e_len : 1;
        if (n > 0 && valid(ext.e_pblk, n)) {
          ext2fs_block_alloc_stats_range(fs_, ext.e_pblk, static_cast<blk_t>(n), -1);
        }
      }
      err = ext2fs_extent_get(handle, EXT2_EXTENT_NEXT, &ext);
    }
    ext2fs_extent_free(handle);
    if (err != EXT2_ET_EXTENT_NO_NEXT && err != EXT2_ET_NO_CURRENT_NODE) {
      return Ext2Error(err, "free file blocks");
    }
  }
  if (ext2fs_file_acl_block(fs_, buf.small()) != 0) {
    errcode_t err = ext2fs_free_ext_attr(fs_, ino, in);
    if (err != 0) return Ext2Error(err, "free xattr block");
  }
  std::memset(in, 0, kInodeSize);
  in->i_dtime = static_cast<__u32>(now_.sec);
  in->i_extra_isize = sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  BOXLITE_RETURN_IF_ERROR(WriteInode(ino, buf));
  ext2fs_inode_alloc_stats2(fs_, ino, -1, 0);
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// Data.

Result<blk64_t> Ext4BuilderImpl::AllocBlocks(uint64_t want, uint64_t* got) {
  uint64_t free_blocks = ext2fs_free_blocks_count(fs_->super);
  uint64_t reserve = pending_dir_blocks_ + kMetadataSlackBlocks;
  if (free_blocks < reserve || free_blocks - reserve < want) {
    return Status::ResourceExhausted(
        "allocate data blocks",
        base::StrFormat("%llu blocks wanted, %llu free (the file system is full)",
                        static_cast<unsigned long long>(want),
                        static_cast<unsigned long long>(free_blocks)));
  }
  blk64_t start = 0;
  blk64_t len = 0;
  errcode_t err = ext2fs_new_range(fs_, 0, data_goal_, want, nullptr, &start, &len);
  if (err != 0) return Ext2Error(err, "allocate data blocks");
  len = std::min<blk64_t>(len, want);
  ext2fs_block_alloc_stats_range(fs_, start, static_cast<blk_t>(len), +1);
  data_goal_ = start + len;
  *got = len;
  return start;
}

Status Ext4BuilderImpl::WriteRun(uint64_t lblk, const uint8_t* data, uint64_t count,
                                 std::vector<Extent>* extents) {
  while (count > 0) {
    uint64_t got = 0;
    BOXLITE_ASSIGN_OR_RETURN(blk64_t pblk, AllocBlocks(count, &got));
    BOXLITE_RETURN_IF_ERROR(batch_.Write(pblk, data, got));
    uint64_t done = 0;
    while (done < got) {
      Extent* last = extents->empty() ? nullptr : &extents->back();
      uint64_t l = lblk + done;
      uint64_t p = pblk + done;
      if (last != nullptr && last->lblk + last->len == l && last->pblk + last->len == p &&
          last->len < kMaxExtentBlocks) {
        uint64_t add = std::min<uint64_t>(got - done, kMaxExtentBlocks - last->len);
        last->len += static_cast<uint32_t>(add);
        done += add;
        continue;
      }
      uint64_t n = std::min<uint64_t>(got - done, kMaxExtentBlocks);
      extents->push_back(Extent{l, p, static_cast<uint32_t>(n)});
      done += n;
    }
    lblk += got;
    data += got * kBlockSize;
    count -= got;
  }
  return Status::OK();
}

// Writes the complete blocks in the stage (and with `final` the partial last one, padded
// with zeros); all-zero blocks become holes. A partial block stays staged.
Status Ext4BuilderImpl::StageFlush(bool final, std::vector<Extent>* extents,
                                   uint64_t* blocks) {
  size_t full = stage_fill_ / kBlockSize;
  size_t tail = stage_fill_ % kBlockSize;
  if (final && tail != 0) {
    std::memset(stage_.get() + stage_fill_, 0, kBlockSize - tail);
    ++full;
    tail = 0;
  }
  size_t i = 0;
  while (i < full) {
    if (IsZeroBlock(stage_.get() + i * kBlockSize)) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < full && !IsZeroBlock(stage_.get() + j * kBlockSize)) ++j;
    BOXLITE_RETURN_IF_ERROR(
        WriteRun(stage_lblk_ + i, stage_.get() + i * kBlockSize, j - i, extents));
    *blocks += j - i;
    i = j;
  }
  if (tail != 0) std::memmove(stage_.get(), stage_.get() + full * kBlockSize, tail);
  stage_lblk_ += full;
  stage_fill_ = tail;
  return Status::OK();
}

Status Ext4BuilderImpl::WriteFileData(LayerStream* stream, uint64_t size,
                                      std::vector<Extent>* extents, uint64_t* blocks) {
  stage_lblk_ = 0;
  stage_fill_ = 0;
  const size_t capacity = kStageBlocks * kBlockSize;
  for (;;) {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(stream->tar(), &buf, &len, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return stream->TarError("read file data");
    if (len == 0) continue;
    uint64_t pos = stage_lblk_ * kBlockSize + stage_fill_;
    uint64_t off = static_cast<uint64_t>(offset);
    if (offset < 0 || off < pos) return Status::Corruption("sparse map out of order");
    if (off > size || len > size - off) {
      return Status::Corruption("file data beyond the file size");
    }
    if (off > pos) {
      // A hole. If it ends inside the staged partial block, zero-fill up to it; else
      // write out what is staged (padding the partial block) and restart at the offset.
      uint64_t block_end = (pos + kBlockSize - 1) / kBlockSize * kBlockSize;
      if (off < block_end) {
        std::memset(stage_.get() + stage_fill_, 0, off - pos);
        stage_fill_ += off - pos;
      } else {
        BOXLITE_RETURN_IF_ERROR(StageFlush(true, extents, blocks));
        stage_lblk_ = off / kBlockSize;
        stage_fill_ = off % kBlockSize;
        std::memset(stage_.get(), 0, stage_fill_);
      }
    }
    const uint8_t* p = static_cast<const uint8_t*>(buf);
    while (len > 0) {
      size_t n = std::min(len, capacity - stage_fill_);
      std::memcpy(stage_.get() + stage_fill_, p, n);
      stage_fill_ += n;
      p += n;
      len -= n;
      if (stage_fill_ == capacity) BOXLITE_RETURN_IF_ERROR(StageFlush(false, extents, blocks));
    }
  }
  return StageFlush(true, extents, blocks);
}

Result<ext2_ino_t> Ext4BuilderImpl::CreateRegular(LayerStream* stream, struct archive_entry* e,
                                                  const Meta& meta) {
  int64_t ssize = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  if (ssize < 0) return Status::Corruption("negative file size");
  uint64_t size = static_cast<uint64_t>(ssize);
  if ((size + kBlockSize - 1) / kBlockSize > kMaxFileBlocks) {
    return Status::Corruption("file larger than ext4 allows",
                              base::StrFormat("%llu bytes", static_cast<unsigned long long>(size)));
  }
  if (archive_entry_sparse_count(e) == 0) {
    // The data is in the stream byte for byte; refuse early what cannot fit even if
    // only part of it turned out to be zeros, instead of inflating it all first.
    uint64_t free_bytes = ext2fs_free_blocks_count(fs_->super) * kBlockSize;
    if (size > free_bytes) {
      return Status::ResourceExhausted(
          "file does not fit",
          base::StrFormat("%s needed, %s free (the file system is full)",
                          base::HumanBytes(size).c_str(), base::HumanBytes(free_bytes).c_str()));
    }
  }
  BOXLITE_ASSIGN_OR_RETURN(ext2_ino_t ino, AllocInode(false));
  std::vector<Extent> extents;
  uint64_t blocks = 0;
  BOXLITE_RETURN_IF_ERROR(WriteFileData(stream, size, &extents, &blocks));
  InodeBuf buf;
  FillCommon(buf, LINUX_S_IFREG, meta, 1);
  ext2fs_inode_size_set(fs_, buf.small(), size);
  ext2fs_iblk_set(fs_, buf.small(), blocks);
  BOXLITE_RETURN_IF_ERROR(WriteExtents(ino, buf, extents));
  BOXLITE_RETURN_IF_ERROR(SetXattrs(ino, meta.xattrs));
  return ino;
}

Result<ext2_ino_t> Ext4BuilderImpl::CreateSymlink(std::string_view target, const Meta& meta) {
  BOXLITE_ASSIGN_OR_RETURN(ext2_ino_t ino, AllocInode(false));
  InodeBuf buf;
  FillCommon(buf, LINUX_S_IFLNK, meta, 1);
  ext2_inode_large* in = buf.large();
  in->i_size = static_cast<__u32>(target.size());
  if (target.size() < sizeof(in->i_block)) {
    // A fast symlink: the target lives in the inode.
    std::memcpy(in->i_block, target.data(), target.size());
    BOXLITE_RETURN_IF_ERROR(WriteInode(ino, buf));
  } else {
    std::vector<uint8_t> block(kBlockSize, 0);
    std::memcpy(block.data(), target.data(), target.size());
    std::vector<Extent> extents;
    BOXLITE_RETURN_IF_ERROR(WriteRun(0, block.data(), 1, &extents));
    ext2fs_iblk_set(fs_, buf.small(), 1);
    BOXLITE_RETURN_IF_ERROR(WriteExtents(ino, buf, extents));
  }
  BOXLITE_RETURN_IF_ERROR(SetXattrs(ino, meta.xattrs));
  return ino;
}

Result<ext2_ino_t> Ext4BuilderImpl::CreateSpecial(uint16_t type_bits, uint32_t major,
                                                  uint32_t minor, const Meta& meta) {
  BOXLITE_ASSIGN_OR_RETURN(ext2_ino_t ino, AllocInode(false));
  InodeBuf buf;
  FillCommon(buf, type_bits, meta, 1);
  ext2_inode_large* in = buf.large();
  if (type_bits == LINUX_S_IFCHR || type_bits == LINUX_S_IFBLK) {
    // The kernel's old (8:8) encoding when it fits, else the new one, as mke2fs -d does.
    if (major < 256 && minor < 256) {
      in->i_block[0] = major * 256 + minor;
    } else {
      in->i_block[1] = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
    }
  }
  BOXLITE_RETURN_IF_ERROR(WriteInode(ino, buf));
  BOXLITE_RETURN_IF_ERROR(SetXattrs(ino, meta.xattrs));
  return ino;
}

// ---------------------------------------------------------------------------------------
// Finish.

// Lays out `dir` as linear blocks: ".", "..", then the children in any order.
void Ext4BuilderImpl::LayoutLinear(const DirNode* dir, std::vector<uint8_t>* data) {
  DirBlockPacker packer(fs_, data);
  packer.Add(dir->ino, ".", EXT2_FT_DIR);
  packer.Add(dir->parent->ino, "..", EXT2_FT_DIR);
  for (const auto& [name, entry] : dir->children) packer.Add(entry.ino, name, entry.type);
  while (data->size() / kBlockSize < dir->min_blocks) packer.StartBlock();
  packer.Close();
}

// Lays out `dir` as an htree (dir_index), like `e2fsck -D` would: block 0 is the root,
// then the leaves in hash order, then (for more than 507 leaves) one level of index
// nodes. False when the directory needs more than two index levels.
bool Ext4BuilderImpl::LayoutIndexed(const DirNode* dir, std::vector<uint8_t>* data) {
  int version = fs_->super->s_def_hash_version;
  if (version <= EXT2_HASH_TEA && (fs_->super->s_flags & EXT2_FLAGS_UNSIGNED_HASH)) {
    version += 3;
  }
  struct Named {
    ext2_dirhash_t hash;
    ext2_dirhash_t minor;
    std::string_view name;
    const Entry* entry;
  };
  std::vector<Named> names;
  names.reserve(dir->children.size());
  for (const auto& [name, entry] : dir->children) {
    Named n{0, 0, name, &entry};
    if (ext2fs_dirhash(version, name.data(), static_cast<int>(name.size()),
                       fs_->super->s_hash_seed, &n.hash, &n.minor) != 0) {
      return false;
    }
    names.push_back(n);
  }
  std::sort(names.begin(), names.end(), [](const Named& a, const Named& b) {
    if (a.hash != b.hash) return a.hash < b.hash;
    if (a.minor != b.minor) return a.minor < b.minor;
    return a.name < b.name;
  });
  std::vector<uint8_t> out(kBlockSize, 0);  // The root, filled in below.
  DirBlockPacker packer(fs_, &out);
  std::vector<uint32_t> leaf_hash;  // Lowest hash of each leaf; bit 0: continues a run.
  ext2_dirhash_t prev = 1;          // Hashes are even: nothing equals 1.
  for (const Named& n : names) {
    if (packer.Add(n.entry->ino, n.name, n.entry->type)) {
      leaf_hash.push_back(leaf_hash.empty() ? 0 : (n.hash == prev ? n.hash | 1 : n.hash));
    }
    prev = n.hash;
  }
  packer.Close();
  const size_t leaves = leaf_hash.size();
  const uint16_t root_limit = (kBlockSize - 32 - sizeof(ext2_dx_tail)) / sizeof(ext2_dx_entry);
  const uint16_t node_limit = (kBlockSize - 8 - sizeof(ext2_dx_tail)) / sizeof(ext2_dx_entry);
  if (leaves > size_t{root_limit} * node_limit) return false;
  const uint8_t levels = leaves > root_limit ? 1 : 0;

  uint8_t* root = out.data();
  auto* dot = reinterpret_cast<ext2_dir_entry*>(root);
  dot->inode = dir->ino;
  ext2fs_set_rec_len(fs_, 12, dot);
  ext2fs_dirent_set_name_len(dot, 1);
  ext2fs_dirent_set_file_type(dot, EXT2_FT_DIR);
  dot->name[0] = '.';
  auto* dotdot = reinterpret_cast<ext2_dir_entry*>(root + 12);
  dotdot->inode = dir->parent->ino;
  ext2fs_set_rec_len(fs_, kBlockSize - 12, dotdot);
  ext2fs_dirent_set_name_len(dotdot, 2);
  ext2fs_dirent_set_file_type(dotdot, EXT2_FT_DIR);
  dotdot->name[0] = dotdot->name[1] = '.';
  auto* info = reinterpret_cast<ext2_dx_root_info*>(root + 24);
  info->reserved_zero = 0;
  info->hash_version = fs_->super->s_def_hash_version;
  info->info_length = 8;
  info->indirect_levels = levels;
  info->unused_flags = 0;

  std::vector<std::pair<uint32_t, uint32_t>> root_entries;
  if (levels == 0) {
    for (size_t i = 0; i < leaves; ++i) {
      root_entries.emplace_back(leaf_hash[i], static_cast<uint32_t>(1 + i));
    }
  } else {
    for (size_t first = 0; first < leaves; first += node_limit) {
      size_t last = std::min(leaves, first + node_limit);
      uint32_t node_block = static_cast<uint32_t>(out.size() / kBlockSize);
      root_entries.emplace_back(leaf_hash[first], node_block);
      out.resize(out.size() + kBlockSize, 0);
      uint8_t* node = out.data() + out.size() - kBlockSize;
      auto* fake = reinterpret_cast<ext2_dir_entry*>(node);
      fake->inode = 0;
      ext2fs_set_rec_len(fs_, kBlockSize, fake);
      std::vector<std::pair<uint32_t, uint32_t>> node_entries;
      for (size_t i = first; i < last; ++i) {
        node_entries.emplace_back(leaf_hash[i], static_cast<uint32_t>(1 + i));
      }
      PutDxEntries(node + 8, node_limit, node_entries);
    }
  }
  PutDxEntries(out.data() + 32, root_limit, root_entries);
  *data = std::move(out);
  return true;
}

Status Ext4BuilderImpl::WriteDirectory(DirNode* dir) {
  std::vector<uint8_t> data;
  data.reserve(DirBlocksFor(*dir) * kBlockSize);
  LayoutLinear(dir, &data);
  // Like the kernel, index a directory once it outgrows one block.
  bool indexed = data.size() > kBlockSize && dir->min_blocks <= 1 && LayoutIndexed(dir, &data);
  uint64_t nblocks = data.size() / kBlockSize;
  for (uint64_t b = 0; b < nblocks; ++b) {
    auto* block = reinterpret_cast<ext2_dir_entry*>(data.data() + b * kBlockSize);
    errcode_t err = ext2fs_dir_block_csum_set(fs_, dir->ino, block);
    if (err != 0) return Ext2Error(err, "checksum directory block");
  }
  // Directories were accounted for in pending_dir_blocks_; let the allocator use that.
  pending_dir_blocks_ -= std::min(pending_dir_blocks_, DirBlocksFor(*dir));
  std::vector<Extent> extents;
  BOXLITE_RETURN_IF_ERROR(WriteRun(0, data.data(), nblocks, &extents));
  InodeBuf buf;
  uint32_t links = dir->subdirs + 2;
  FillCommon(buf, LINUX_S_IFDIR, dir->meta,
             static_cast<uint16_t>(links > kMaxFileLinks ? 1 : links));
  if (indexed) buf.large()->i_flags |= EXT2_INDEX_FL;
  ext2fs_inode_size_set(fs_, buf.small(), nblocks * kBlockSize);
  ext2fs_iblk_set(fs_, buf.small(), nblocks);
  BOXLITE_RETURN_IF_ERROR(WriteExtents(dir->ino, buf, extents));
  return SetXattrs(dir->ino, dir->meta.xattrs);
}

Status Ext4BuilderImpl::Finish() {
  if (state_ != State::kOpen) {
    return Status::FailedPrecondition(state_ == State::kFailed
                                          ? "ext4 builder failed earlier"
                                          : "ext4 builder already finished");
  }
  state_ = State::kFailed;
  // In inode order, so that blocks of neighbouring directories end up close together.
  std::vector<DirNode*> order;
  order.reserve(dirs_.size());
  for (auto& [ino, dir] : dirs_) order.push_back(dir.get());
  std::sort(order.begin(), order.end(), [](const DirNode* a, const DirNode* b) {
    return a->ino < b->ino;
  });
  for (DirNode* dir : order) {
    Status s = WriteDirectory(dir);
    if (!s.ok()) {
      return s.Wrap(dir->meta.origin.empty() ? base::StrFormat("directory inode %u", dir->ino)
                                             : "entry " + dir->meta.origin);
    }
  }
  BOXLITE_RETURN_IF_ERROR(batch_.Flush());
  final_used_bytes_ = UsedBytes();
  // ext2fs_close2() frees the handle only when it succeeds.
  errcode_t err = ext2fs_close2(fs_, sync_on_finish_ ? 0 : EXT2_FLAG_FLUSH_NO_SYNC);
  if (err != 0) ext2fs_free(fs_);
  fs_ = nullptr;
  if (err != 0) return Ext2Error(err, "close ext4 image");
  dirs_.clear();
  state_ = State::kFinished;
  return Status::OK();
}

uint64_t Ext4BuilderImpl::UsedBytes() const {
  if (fs_ == nullptr) return final_used_bytes_;
  uint64_t used = ext2fs_blocks_count(fs_->super) - ext2fs_free_blocks_count(fs_->super);
  return (used + pending_dir_blocks_) * kBlockSize;
}

}  // namespace

Result<std::unique_ptr<Ext4Builder>> Ext4Builder::Create(const std::string& path,
                                                         const Ext4BuildOptions& options) {
  auto builder = std::make_unique<Ext4BuilderImpl>();
  BOXLITE_RETURN_IF_ERROR(builder->Init(path, options).Wrap("create ext4 image " + path));
  return std::unique_ptr<Ext4Builder>(std::move(builder));
}

}  // namespace boxlite::image
