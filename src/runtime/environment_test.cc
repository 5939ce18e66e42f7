// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// The one place configuration is resolved (src/runtime/environment.cc): precedence of the
// API over BOXLITE_* variables over defaults, the same normalisation of registries from
// either source, clear errors for bad values, README.md's table against the list of
// variables, and no other source file reading the environment. In process, no VM.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "boxlite/boxlite.h"
#include "boxlite/config.h"
#include "src/sys/fs.h"

namespace boxlite {
namespace {

// A fake environment: only these variables are set.
EnvironmentLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

RuntimeOptions MustResolve(const RuntimeOptions& given, const EnvironmentLookup& env) {
  auto r = ResolveRuntimeOptions(given, env);
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : RuntimeOptions{};
}

// The error resolving `given` under `vars`, which must be InvalidArgument.
std::string ErrorOf(const RuntimeOptions& given, std::map<std::string, std::string> vars) {
  auto r = ResolveRuntimeOptions(given, Env(std::move(vars)));
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_TRUE(r.error().IsInvalidArgument()) << r.error().ToString();
  return r.error().ToString();
}

// The settings that are one value each, in one line for comparisons.
std::string Scalars(const RuntimeOptions& o) {
  return o.home_dir + "|" + o.data_dir + "|" + o.log_level + "|" + o.accel + "|" +
         std::to_string(o.boot_timeout_s) + "|" + o.console_dir + "|" + o.net_helper + "|" +
         o.console_helper;
}

TEST(EnvironmentTest, DefaultsWithNothingSet) {
  RuntimeOptions o = MustResolve({}, Env({{"HOME", "/home/u"}}));
  EXPECT_EQ(Scalars(o), "/home/u/.local/share/boxlite||||120|||");
  EXPECT_TRUE(o.dns_servers.empty());
  EXPECT_TRUE(o.registry_mirrors.empty());
  EXPECT_TRUE(o.insecure_registries.empty());
  EXPECT_EQ(MustResolve({}, Env({{"HOME", "/home/u"}, {"XDG_DATA_HOME", "/xdg"}})).home_dir,
            "/xdg/boxlite");
  EXPECT_EQ(MustResolve({}, Env({})).home_dir, "/tmp/.local/share/boxlite");
}

TEST(EnvironmentTest, VariablesFillWhatTheApiLeftEmpty) {
  RuntimeOptions o = MustResolve({}, Env({
                                         {"HOME", "/home/u"},
                                         {"BOXLITE_HOME", "/srv/boxlite"},
                                         {"BOXLITE_DATA_DIR", "/opt/data"},
                                         {"BOXLITE_LOG", "debug"},
                                         {"BOXLITE_ACCEL", "TCG"},
                                         {"BOXLITE_BOOT_TIMEOUT", "30"},
                                         {"BOXLITE_CONSOLE_DIR", "/var/log/consoles"},
                                         {"BOXLITE_NET_HELPER", "/opt/boxlite-net"},
                                         {"BOXLITE_CONSOLE_HELPER", "/opt/boxlite-console"},
                                         {"BOXLITE_DNS_SERVERS",
                                          " 10.213.0.2, 10.213.0.3\t[::1]:53 "},
                                     }));
  EXPECT_EQ(Scalars(o), "/srv/boxlite|/opt/data|debug|tcg|30|/var/log/consoles|"
                       "/opt/boxlite-net|/opt/boxlite-console");
  EXPECT_EQ(o.dns_servers, (std::vector<std::string>{"10.213.0.2", "10.213.0.3", "[::1]:53"}));
}

TEST(EnvironmentTest, TheApiBeatsTheVariables) {
  RuntimeOptions given;
  given.home_dir = "/api/home";
  given.data_dir = "/api/data";
  given.log_level = "error";
  given.accel = "kvm";
  given.boot_timeout_s = 7;
  given.console_dir = "/api/consoles";
  given.net_helper = "/api/net";
  given.console_helper = "/api/console";
  given.dns_servers = {"192.0.2.1"};
  RuntimeOptions o = MustResolve(given, Env({
                                            {"BOXLITE_HOME", "/env/home"},
                                            {"BOXLITE_DATA_DIR", "/env/data"},
                                            {"BOXLITE_LOG", "trace"},
                                            {"BOXLITE_ACCEL", "tcg"},
                                            {"BOXLITE_BOOT_TIMEOUT", "99"},
                                            {"BOXLITE_CONSOLE_DIR", "/env/consoles"},
                                            {"BOXLITE_NET_HELPER", "/env/net"},
                                            {"BOXLITE_CONSOLE_HELPER", "/env/console"},
                                            {"BOXLITE_DNS_SERVERS", "198.51.100.1"},
                                        }));
  EXPECT_EQ(Scalars(o), Scalars(given));
  EXPECT_EQ(o.dns_servers, (std::vector<std::string>{"192.0.2.1"}));
}

TEST(EnvironmentTest, WarmStartIsOnUnlessTurnedOff) {
  EXPECT_EQ(MustResolve({}, Env({})).warm, std::optional<bool>(true));
  EXPECT_EQ(MustResolve({}, Env({{"BOXLITE_WARM", "0"}})).warm, std::optional<bool>(false));
  EXPECT_EQ(MustResolve({}, Env({{"BOXLITE_WARM", " 1 "}})).warm, std::optional<bool>(true));
  RuntimeOptions given;
  given.warm = true;
  EXPECT_EQ(MustResolve(given, Env({{"BOXLITE_WARM", "0"}})).warm, std::optional<bool>(true));
  given.warm = false;
  EXPECT_EQ(MustResolve(given, Env({{"BOXLITE_WARM", "1"}})).warm, std::optional<bool>(false));
  std::string error = ErrorOf({}, {{"BOXLITE_WARM", "yes"}});
  EXPECT_NE(error.find("BOXLITE_WARM must be 0 or 1"), std::string::npos) << error;
}

TEST(EnvironmentTest, RegistriesFromTheApiAndTheEnvironmentAreNormalisedAlike) {
  RuntimeOptions given;
  given.registry_mirrors = {"mirror.example/", " http://127.0.0.1:5000 "};
  given.insecure_registries = {"http://localhost:6000/", "127.0.0.1:5001"};
  RuntimeOptions o = MustResolve(
      given, Env({
                 {"BOXLITE_REGISTRY_MIRRORS", " http://127.0.0.1:5000 ,https://m.example/x/,"},
                 {"BOXLITE_INSECURE_REGISTRIES", "127.0.0.1:5001,https://reg.local:7000/,,"},
             }));
  // The environment's first, then the API's; each once; the same spelling either way.
  EXPECT_EQ(o.registry_mirrors, (std::vector<std::string>{"http://127.0.0.1:5000",
                                                          "https://m.example/x",
                                                          "https://mirror.example"}));
  EXPECT_EQ(o.insecure_registries,
            (std::vector<std::string>{"127.0.0.1:5001", "reg.local:7000", "localhost:6000"}));
}

TEST(EnvironmentTest, RegistryEntriesAreCheckedAndNormalised) {
  RuntimeOptions given;
  ImageRegistry plain;
  plain.host = "ghcr.io";
  plain.transport = "";
  given.registries = {plain};
  RuntimeOptions o = MustResolve(given, Env({}));
  ASSERT_EQ(o.registries.size(), 1u);
  EXPECT_EQ(o.registries[0].transport, "https");

  ImageRegistry bad;
  bad.host = "registry.local";
  bad.transport = "ftp";
  given.registries = {plain, bad};
  EXPECT_NE(ErrorOf(given, {}).find("RuntimeOptions.registries[1]"), std::string::npos);
}

TEST(EnvironmentTest, ResolvingTwiceChangesNothing) {
  RuntimeOptions given;
  given.registry_mirrors = {"mirror.example"};
  auto env = Env({{"BOXLITE_REGISTRY_MIRRORS", "http://127.0.0.1:5000"},
                  {"BOXLITE_INSECURE_REGISTRIES", "http://127.0.0.1:5000/"},
                  {"BOXLITE_DNS_SERVERS", "192.0.2.1"},
                  {"HOME", "/home/u"}});
  RuntimeOptions once = MustResolve(given, env);
  RuntimeOptions twice = MustResolve(once, env);
  EXPECT_EQ(twice.registry_mirrors, once.registry_mirrors);
  EXPECT_EQ(twice.insecure_registries, once.insecure_registries);
  EXPECT_EQ(twice.dns_servers, once.dns_servers);
  EXPECT_EQ(twice.home_dir, once.home_dir);
  EXPECT_EQ(twice.boot_timeout_s, once.boot_timeout_s);
}

TEST(EnvironmentTest, BadValuesAreClearErrorsNamingTheirSource) {
  struct Case {
    std::map<std::string, std::string> vars;
    std::string wanted;  // In the message.
  };
  const Case cases[] = {
      {{{"BOXLITE_BOOT_TIMEOUT", "soon"}}, "BOXLITE_BOOT_TIMEOUT must be a number of seconds"},
      {{{"BOXLITE_BOOT_TIMEOUT", "0"}}, "BOXLITE_BOOT_TIMEOUT must be a number of seconds"},
      {{{"BOXLITE_BOOT_TIMEOUT", "-5"}}, "not \"-5\""},
      {{{"BOXLITE_LOG", "loud"}}, "BOXLITE_LOG must be error, warn, info, debug or trace"},
      {{{"BOXLITE_ACCEL", "xen"}}, "BOXLITE_ACCEL must be kvm or tcg, not \"xen\""},
      {{{"BOXLITE_REGISTRY_MIRRORS", "ftp://mirror"}}, "BOXLITE_REGISTRY_MIRRORS"},
      {{{"BOXLITE_INSECURE_REGISTRIES", "ok:5000,bad host:1"}}, "BOXLITE_INSECURE_REGISTRIES"},
      {{{"BOXLITE_INSECURE_REGISTRIES", "reg.local:99999"}}, "invalid port"},
  };
  for (const auto& c : cases) {
    std::string error = ErrorOf({}, c.vars);
    EXPECT_NE(error.find(c.wanted), std::string::npos) << error;
  }
  RuntimeOptions given;
  given.boot_timeout_s = -1;
  EXPECT_NE(ErrorOf(given, {}).find("RuntimeOptions.boot_timeout_s"), std::string::npos);
  given = {};
  given.accel = "hvf";
  EXPECT_NE(ErrorOf(given, {{"BOXLITE_ACCEL", "kvm"}}).find("RuntimeOptions.accel"),
            std::string::npos);
  given = {};
  given.insecure_registries = {"http://reg.local/path"};
  EXPECT_NE(ErrorOf(given, {}).find("RuntimeOptions.insecure_registries"), std::string::npos);
  given = {};
  given.registry_mirrors = {"ftp://mirror"};
  EXPECT_NE(ErrorOf(given, {}).find("RuntimeOptions.registry_mirrors"), std::string::npos);
}

// Runtime::Open resolves: a bad variable fails the open before anything is created.
TEST(EnvironmentTest, OpenRefusesABadVariableAndCreatesNothing) {
  auto parent = sys::TempDir::Create("/tmp", "boxlite-env-");
  ASSERT_TRUE(parent.ok());
  RuntimeOptions options;
  options.home_dir = sys::JoinPath(parent->path(), "home");
  ASSERT_EQ(::setenv("BOXLITE_BOOT_TIMEOUT", "soon", 1), 0);
  auto rt = Runtime::Open(options);
  ::unsetenv("BOXLITE_BOOT_TIMEOUT");
  ASSERT_FALSE(rt.ok());
  EXPECT_TRUE(rt.error().IsInvalidArgument());
  EXPECT_NE(rt.error().message().find("BOXLITE_BOOT_TIMEOUT"), std::string::npos);
  EXPECT_FALSE(sys::Exists(options.home_dir));
  // And opens once the variable is fixed.
  ASSERT_EQ(::setenv("BOXLITE_BOOT_TIMEOUT", "45", 1), 0);
  rt = Runtime::Open(options);
  ::unsetenv("BOXLITE_BOOT_TIMEOUT");
  ASSERT_TRUE(rt.ok()) << rt.error().ToString();
  EXPECT_TRUE(sys::Exists(options.home_dir));
}

TEST(EnvironmentTest, EnvironmentValueReadsOnlyListedBoxliteVariables) {
  ASSERT_EQ(::setenv("BOXLITE_SECURITY", "disable", 1), 0);
  ASSERT_EQ(::setenv("BOXLITE_NOT_A_SETTING", "x", 1), 0);
  EXPECT_EQ(EnvironmentValue("BOXLITE_SECURITY"), std::optional<std::string>("disable"));
  EXPECT_EQ(EnvironmentValue("BOXLITE_NOT_A_SETTING"), std::nullopt);
  ASSERT_EQ(::setenv("BOXLITE_SECURITY", "", 1), 0);
  EXPECT_EQ(EnvironmentValue("BOXLITE_SECURITY"), std::nullopt);  // Empty is unset.
  ::unsetenv("BOXLITE_SECURITY");
  ::unsetenv("BOXLITE_NOT_A_SETTING");
}

// README.md's "Environment" table names exactly the variables of EnvironmentVariables().
TEST(EnvironmentTest, ReadmeTableListsExactlyTheVariables) {
  std::ifstream in(BOXLITE_README_FOR_TEST);
  ASSERT_TRUE(in) << BOXLITE_README_FOR_TEST;
  std::string line;
  bool in_section = false;
  std::multiset<std::string> documented;
  const std::regex row(R"(^\|\s*`(BOXLITE_[A-Z0-9_]+)`\s*\|)");
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Environment";
    std::smatch m;
    if (in_section && std::regex_search(line, m, row)) documented.insert(m[1]);
  }
  std::multiset<std::string> listed;
  for (const auto& v : EnvironmentVariables()) {
    listed.insert(v.name);
    EXPECT_TRUE(std::string(v.read_by) == "runtime" || std::string(v.read_by) == "cli") << v.name;
  }
  EXPECT_EQ(documented, listed) << "README.md's Environment table and EnvironmentVariables() "
                                   "(src/runtime/environment.cc) must name the same variables";
}

// Nothing but src/runtime/environment.cc reads BOXLITE_* variables; the other readers of
// the environment read variables that are not BoxLite's settings (PATH, DOCKER_CONFIG,
// HOME, `-e NAME` copying the caller's value, TMPDIR in test helpers).
TEST(EnvironmentTest, NoOtherSourceFileReadsTheEnvironment) {
  namespace fs = std::filesystem;
  const std::set<std::string> allowed = {"environment.cc", "option_specs.cc", "auth.cc",
                                         "subprocess.cc",  "ext4_test_util.cc"};
  fs::path root = fs::path(BOXLITE_README_FOR_TEST).parent_path();
  std::vector<std::string> readers;
  for (const char* dir : {"src", "agent", "python/src"}) {
    if (!fs::exists(root / dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / dir)) {
      std::string name = entry.path().filename().string();
      if (!entry.is_regular_file() || name.find("_test") != std::string::npos) continue;
      if (!name.ends_with(".cc") && !name.ends_with(".h")) continue;
      std::ifstream f(entry.path());
      std::stringstream text;
      text << f.rdbuf();
      if (text.str().find("getenv(") != std::string::npos && !allowed.count(name)) {
        readers.push_back(entry.path().string());
      }
    }
  }
  EXPECT_TRUE(readers.empty()) << "read settings through ResolveRuntimeOptions "
                                  "(src/runtime/environment.cc), not getenv: "
                               << ::testing::PrintToString(readers);
}

}  // namespace
}  // namespace boxlite
