// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/image/manifest.h"

#include <sys/utsname.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "src/base/macros.h"
#include "src/base/strings.h"
#include "src/image/reference.h"

namespace boxlite::image {
namespace {

using nlohmann::json;

// Limits on untrusted documents; real images are far below them.
constexpr size_t kMaxLayers = 1024;
constexpr size_t kMaxIndexEntries = 4096;

// Lets callers write `BOXLITE_RETURN_IF_ERROR` on parsing helpers that return a field.
Status Bad(std::string_view what) { return Status::Corruption("malformed manifest", what); }

Result<std::string> OptString(const json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return Status::Corruption(std::string(what), base::StrFormat("\"%s\" is not a string", key));
  }
  return it->get<std::string>();
}

Result<std::map<std::string, std::string>> StringMap(const json& obj, const char* key,
                                                     std::string_view what) {
  std::map<std::string, std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) {
    return Status::Corruption(std::string(what), base::StrFormat("\"%s\" is not an object", key));
  }
  for (auto e = it->begin(); e != it->end(); ++e) {
    if (!e.value().is_string()) {
      return Status::Corruption(std::string(what),
                                base::StrFormat("\"%s\".\"%s\" is not a string", key,
                                                e.key().c_str()));
    }
    out[e.key()] = e.value().get<std::string>();
  }
  return out;
}

Result<std::vector<std::string>> StringList(const json& obj, const char* key,
                                            std::string_view what) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (it->is_string()) {  // Some old images store Cmd as a single string.
    out.push_back(it->get<std::string>());
    return out;
  }
  if (!it->is_array()) {
    return Status::Corruption(std::string(what), base::StrFormat("\"%s\" is not a list", key));
  }
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return Status::Corruption(std::string(what),
                                base::StrFormat("\"%s\" holds a non-string", key));
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

// The keys of an object such as ExposedPorts {"80/tcp": {}}, sorted.
Result<std::vector<std::string>> KeySet(const json& obj, const char* key, std::string_view what) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) {
    return Status::Corruption(std::string(what), base::StrFormat("\"%s\" is not an object", key));
  }
  for (auto e = it->begin(); e != it->end(); ++e) out.push_back(e.key());
  std::sort(out.begin(), out.end());
  return out;
}

Result<Descriptor> ParseDescriptor(const json& obj, std::string_view what) {
  if (!obj.is_object()) return Bad(std::string(what) + " is not an object");
  Descriptor d;
  BOXLITE_ASSIGN_OR_RETURN(d.media_type, OptString(obj, "mediaType", what));
  BOXLITE_ASSIGN_OR_RETURN(d.digest, OptString(obj, "digest", what));
  Status s = ValidateDigest(d.digest, std::string(what) + " digest");
  if (!s.ok()) return Status::Corruption("malformed manifest", s.message());
  auto size = obj.find("size");
  if (size == obj.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return Bad(std::string(what) + " has no valid \"size\"");
  }
  d.size = static_cast<uint64_t>(size->get<int64_t>());
  BOXLITE_ASSIGN_OR_RETURN(d.urls, StringList(obj, "urls", what));
  BOXLITE_ASSIGN_OR_RETURN(d.annotations, StringMap(obj, "annotations", what));
  auto platform = obj.find("platform");
  if (platform != obj.end() && !platform->is_null()) {
    if (!platform->is_object()) return Bad(std::string(what) + " platform is not an object");
    Platform p;
    BOXLITE_ASSIGN_OR_RETURN(p.os, OptString(*platform, "os", what));
    BOXLITE_ASSIGN_OR_RETURN(p.architecture, OptString(*platform, "architecture", what));
    BOXLITE_ASSIGN_OR_RETURN(p.variant, OptString(*platform, "variant", what));
    d.platform = std::move(p);
  }
  return d;
}

std::string NormalizeArch(std::string arch) {
  if (arch == "x86_64" || arch == "x86-64") return "amd64";
  if (arch == "aarch64") return "arm64";
  return arch;
}

// Orders arm variants: v5 < v6 < v7 < v8; unknown strings rank 0.
int ArmLevel(const std::string& variant) {
  if (variant.size() == 2 && variant[0] == 'v' && variant[1] >= '5' && variant[1] <= '8') {
    return variant[1] - '0';
  }
  return 0;
}

std::string NormalizeVariant(const std::string& arch, const std::string& variant) {
  if (arch == "arm64" && variant.empty()) return "v8";
  if (arch == "amd64" && variant.empty()) return "v1";
  return variant;
}

}  // namespace

std::string ManifestAcceptHeader() {
  return base::StrFormat("%s, %s, %s, %s", std::string(kMediaTypeOciManifest).c_str(),
                         std::string(kMediaTypeOciIndex).c_str(),
                         std::string(kMediaTypeDockerManifest).c_str(),
                         std::string(kMediaTypeDockerManifestList).c_str());
}

std::string Platform::String() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

Platform HostPlatform() {
  Platform p;
  p.os = "linux";
  struct utsname u;
  std::string machine = ::uname(&u) == 0 ? u.machine : "x86_64";
  if (machine == "x86_64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64" || machine == "arm64") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (machine.starts_with("armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (machine.starts_with("armv6")) {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (machine == "i386" || machine == "i686") {
    p.architecture = "386";
  } else {
    p.architecture = machine;  // ppc64le, s390x, riscv64 already use GOARCH names.
  }
  return p;
}

Result<Platform> ParsePlatform(std::string_view s) {
  auto parts = base::Split(s, '/');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return Status::InvalidArgument("invalid platform \"" + std::string(s) + "\"",
                                   "expected os/arch[/variant]");
  }
  Platform p{base::ToLower(parts[0]), NormalizeArch(base::ToLower(parts[1])),
             parts.size() == 3 ? base::ToLower(parts[2]) : std::string()};
  return p;
}

bool PlatformMatches(const Platform& want, const Platform& candidate) {
  if (base::ToLower(want.os) != base::ToLower(candidate.os)) return false;
  std::string arch = NormalizeArch(base::ToLower(want.architecture));
  if (arch != NormalizeArch(base::ToLower(candidate.architecture))) return false;
  std::string wv = NormalizeVariant(arch, base::ToLower(want.variant));
  std::string cv = NormalizeVariant(arch, base::ToLower(candidate.variant));
  if (wv == cv) return true;
  if (arch == "arm") {
    // An empty wanted variant accepts anything; an empty candidate variant runs anywhere.
    if (wv.empty() || cv.empty()) return true;
    int w = ArmLevel(wv);
    int c = ArmLevel(cv);
    return w != 0 && c != 0 && c <= w;
  }
  if (arch == "amd64") {
    // x86-64 micro-architecture levels: a v3 host runs v1..v3 images.
    auto level = [](const std::string& v) {
      return v.size() == 2 && v[0] == 'v' && v[1] >= '1' && v[1] <= '4' ? v[1] - '0' : 0;
    };
    int w = level(wv);
    int c = level(cv);
    return w != 0 && c != 0 && c <= w;
  }
  return false;
}

Result<ParsedManifest> ParseManifest(std::string_view body, std::string_view content_type) {
  std::string ctype = base::ToLower(base::Trim(content_type.substr(0, content_type.find(';'))));
  if (ctype == kMediaTypeDockerSchema1 || ctype == kMediaTypeDockerSchema1Signed) {
    return Status::NotSupported(
        "Docker image manifest schema 1 (" + ctype + ") is not supported",
        "the image is too old; re-push it with a current docker or skopeo (schema 2 or OCI)");
  }
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Bad("not valid JSON");
  if (!doc.is_object()) return Bad("not a JSON object");

  auto version = doc.find("schemaVersion");
  if (version != doc.end()) {
    if (!version->is_number_integer()) return Bad("\"schemaVersion\" is not a number");
    int64_t v = version->get<int64_t>();
    if (v == 1) {
      return Status::NotSupported(
          "Docker image manifest schema 1 is not supported",
          "the image is too old; re-push it with a current docker or skopeo (schema 2 or OCI)");
    }
    if (v != 2) return Bad(base::StrFormat("unknown schemaVersion %lld", static_cast<long long>(v)));
  }

  ParsedManifest out;
  BOXLITE_ASSIGN_OR_RETURN(std::string media, OptString(doc, "mediaType", "manifest"));
  if (media == kMediaTypeDockerSchema1 || media == kMediaTypeDockerSchema1Signed) {
    return Status::NotSupported("Docker image manifest schema 1 (" + media + ") is not supported",
                                "re-push the image with a current docker or skopeo");
  }
  auto known = [](std::string_view t) {
    return t == kMediaTypeOciManifest || t == kMediaTypeOciIndex ||
           t == kMediaTypeDockerManifest || t == kMediaTypeDockerManifestList;
  };
  if (media.empty() && known(ctype)) media = ctype;
  if (media.empty()) {
    // OCI documents may omit mediaType; the shape tells them apart.
    bool has_manifests = doc.contains("manifests");
    bool has_layers = doc.contains("layers") || doc.contains("config");
    if (has_manifests == has_layers) {
      return Bad("neither an image manifest nor an index (no mediaType, ambiguous shape)");
    }
    media = std::string(has_manifests ? kMediaTypeOciIndex : kMediaTypeOciManifest);
  }
  if (!known(media)) {
    return Status::NotSupported("unsupported manifest media type \"" + media + "\"",
                                "BoxLite pulls container images (OCI or Docker schema 2)");
  }
  out.media_type = media;
  BOXLITE_ASSIGN_OR_RETURN(out.annotations, StringMap(doc, "annotations", "manifest"));

  if (media == kMediaTypeOciIndex || media == kMediaTypeDockerManifestList) {
    out.kind = ManifestKind::kIndex;
    auto list = doc.find("manifests");
    if (list == doc.end() || !list->is_array()) return Bad("index has no \"manifests\" list");
    if (list->size() > kMaxIndexEntries) return Bad("index has too many entries");
    size_t i = 0;
    for (const auto& entry : *list) {
      BOXLITE_ASSIGN_OR_RETURN(Descriptor d,
                               ParseDescriptor(entry, base::StrFormat("manifests[%zu]", i++)));
      out.manifests.push_back(std::move(d));
    }
    return out;
  }

  out.kind = ManifestKind::kImage;
  auto config = doc.find("config");
  if (config == doc.end()) return Bad("image manifest has no \"config\"");
  BOXLITE_ASSIGN_OR_RETURN(out.config, ParseDescriptor(*config, "config"));
  if (!out.config.media_type.empty() && out.config.media_type != kMediaTypeOciConfig &&
      out.config.media_type != kMediaTypeDockerConfig) {
    return Status::NotSupported(
        "not a container image",
        "its config has media type \"" + out.config.media_type + "\" (an OCI artifact?)");
  }
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) return Bad("image manifest has no \"layers\"");
  if (layers->size() > kMaxLayers) return Bad("image manifest has too many layers");
  size_t i = 0;
  for (const auto& entry : *layers) {
    std::string what = base::StrFormat("layers[%zu]", i++);
    BOXLITE_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(entry, what));
    if (!LayerCompressionOf(d.media_type)) {
      return Status::NotSupported(
          base::StrFormat("layer %s has media type \"%s\"", d.digest.c_str(),
                          d.media_type.c_str()),
          "BoxLite unpacks tar, tar+gzip and tar+zstd layers only");
    }
    out.layers.push_back(std::move(d));
  }
  return out;
}

Result<Descriptor> SelectPlatform(const ParsedManifest& index, const Platform& want,
                                  std::string_view what) {
  const Descriptor* compatible = nullptr;
  std::vector<std::string> available;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    // buildx attaches attestations as "unknown/unknown" entries; they are not images.
    if (d.platform->os == "unknown" || d.platform->architecture == "unknown") continue;
    available.push_back(d.platform->String());
    if (!PlatformMatches(want, *d.platform)) continue;
    std::string arch = NormalizeArch(want.architecture);
    if (NormalizeVariant(arch, want.variant) ==
        NormalizeVariant(arch, d.platform->variant)) {
      return d;
    }
    if (compatible == nullptr) compatible = &d;
  }
  if (compatible != nullptr) return *compatible;
  std::sort(available.begin(), available.end());
  available.erase(std::unique(available.begin(), available.end()), available.end());
  return Status::NotFound(
      base::StrFormat("no image for platform %s in %s", want.String().c_str(),
                      std::string(what).c_str()),
      "available: " + (available.empty() ? std::string("none") : base::Join(available, ", ")));
}

Result<ParsedImageConfig> ParseImageConfig(std::string_view body) {
  constexpr std::string_view kWhat = "malformed image config";
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::Corruption(std::string(kWhat), "not a JSON object");
  }
  ParsedImageConfig out;
  ImageConfig& c = out.config;
  BOXLITE_ASSIGN_OR_RETURN(c.os, OptString(doc, "os", kWhat));
  BOXLITE_ASSIGN_OR_RETURN(c.architecture, OptString(doc, "architecture", kWhat));
  BOXLITE_ASSIGN_OR_RETURN(c.variant, OptString(doc, "variant", kWhat));
  BOXLITE_ASSIGN_OR_RETURN(std::string created, OptString(doc, "created", kWhat));
  out.created_unix = ParseRfc3339(created).value_or(0);

  auto cfg = doc.find("config");
  if (cfg != doc.end() && !cfg->is_null()) {
    if (!cfg->is_object()) return Status::Corruption(std::string(kWhat), "\"config\" is not an object");
    BOXLITE_ASSIGN_OR_RETURN(c.env, StringList(*cfg, "Env", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.entrypoint, StringList(*cfg, "Entrypoint", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.cmd, StringList(*cfg, "Cmd", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.working_dir, OptString(*cfg, "WorkingDir", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.user, OptString(*cfg, "User", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.labels, StringMap(*cfg, "Labels", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.exposed_ports, KeySet(*cfg, "ExposedPorts", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.volumes, KeySet(*cfg, "Volumes", kWhat));
    BOXLITE_ASSIGN_OR_RETURN(c.stop_signal, OptString(*cfg, "StopSignal", kWhat));
  }

  auto rootfs = doc.find("rootfs");
  if (rootfs == doc.end() || !rootfs->is_object()) {
    return Status::Corruption(std::string(kWhat), "no \"rootfs\" object");
  }
  BOXLITE_ASSIGN_OR_RETURN(std::string type, OptString(*rootfs, "type", kWhat));
  if (type != "layers") {
    return Status::Corruption(std::string(kWhat),
                              "rootfs.type is \"" + type + "\", expected \"layers\"");
  }
  BOXLITE_ASSIGN_OR_RETURN(out.diff_ids, StringList(*rootfs, "diff_ids", kWhat));
  if (out.diff_ids.size() > kMaxLayers) {
    return Status::Corruption(std::string(kWhat), "too many diff_ids");
  }
  for (const auto& d : out.diff_ids) {
    Status s = ValidateDigest(d, "diff_id");
    if (!s.ok()) return Status::Corruption(std::string(kWhat), s.message());
  }
  return out;
}

std::optional<int64_t> ParseRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  auto num = [&](size_t pos, size_t len) -> std::optional<int64_t> {
    if (pos + len > s.size()) return std::nullopt;
    int64_t v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2),
       se = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !se) return std::nullopt;
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *se > 60) {
    return std::nullopt;
  }
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  if (i >= s.size()) return std::nullopt;
  int64_t offset = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    ++i;
  } else if (s[i] == '+' || s[i] == '-') {
    auto oh = num(i + 1, 2), om = num(i + 4, 2);
    if (!oh || !om || i + 3 >= s.size() || s[i + 3] != ':') return std::nullopt;
    offset = (*oh * 60 + *om) * 60 * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  // Days from civil (Howard Hinnant's algorithm).
  int64_t yy = *y - (*mo <= 2 ? 1 : 0);
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400;
  int64_t mp = (*mo + 9) % 12;
  int64_t doy = (153 * mp + 2) / 5 + *d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return days * 86400 + *h * 3600 + *mi * 60 + *se - offset;
}

std::optional<LayerCompression> LayerCompressionOf(std::string_view media_type) {
  if (media_type == kMediaTypeOciLayer || media_type == kMediaTypeDockerLayer) {
    return LayerCompression::kNone;
  }
  if (media_type == kMediaTypeOciLayerGzip || media_type == kMediaTypeDockerLayerGzip) {
    return LayerCompression::kGzip;
  }
  if (media_type == kMediaTypeOciLayerZstd) return LayerCompression::kZstd;
  // Non-distributable OCI layers are ordinary tarballs that registries may not serve.
  if (media_type == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") {
    return LayerCompression::kGzip;
  }
  return std::nullopt;
}

}  // namespace boxlite::image
