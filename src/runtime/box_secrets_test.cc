// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "src/runtime/box_secrets.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "boxlite/options.h"
#include "src/net/secret_ca.h"
#include "src/net/secret_config.h"
#include "src/runtime/box_record.h"
#include "src/sys/fs.h"

namespace boxlite::runtime {
namespace {

constexpr char kValue[] = "sk-live-never-shown-0123456789";

BoxOptions WithSecret(Secret s) {
  BoxOptions o;
  o.image = "alpine";
  o.secrets.push_back(std::move(s));
  return o;
}

TEST(SecretValidationTest, AcceptsTheDocumentedForms) {
  EXPECT_TRUE(ValidateBoxOptions(WithSecret({"API_KEY", kValue, {"api.test", "*.openai.com:443"}, ""})).ok());
  EXPECT_TRUE(ValidateBoxOptions(WithSecret({"_k2", kValue, {}, "<BOXLITE_SECRET:k2>"})).ok());
  // BoxLite 0.9 takes any name; the variable is made of it.
  EXPECT_TRUE(ValidateBoxOptions(WithSecret({"openai-key.v2", kValue, {}, ""})).ok());
  EXPECT_TRUE(ValidateBoxOptions(WithSecret({"", kValue, {}, ""})).ok());
}

TEST(SecretValidationTest, RefusesBadInputWithoutQuotingTheValue) {
  std::vector<Secret> bad = {
      {std::string(256, 'n'), kValue, {"api.test"}, ""},  // name too long
      {std::string("a\0b", 3), kValue, {"api.test"}, ""},  // NUL in the name
      {"K", "", {"api.test"}, ""},                  // empty value
      {"K", std::string(65 << 10, 'v'), {}, ""},   // value too long
      {"K", std::string("a\0b", 3), {}, ""},        // NUL
      {"K", kValue, {"10.0.0.1"}, ""},              // address
      {"K", kValue, {"10.0.0.0/8"}, ""},            // CIDR
      {"K", kValue, {"api.test:80"}, ""},           // port
      {"K", kValue, {"bad host"}, ""},              // not a name
      {"K", kValue, {"a.*.test"}, ""},              // wildcard not first
      {"K", kValue, {}, "short"},                   // placeholder length
      {"K", kValue, {}, "has space here"},          // placeholder chars
      {"K", kValue, {}, std::string("x") + kValue}, // placeholder holds the value
  };
  for (const auto& s : bad) {
    Status st = ValidateBoxOptions(WithSecret(s));
    EXPECT_TRUE(st.IsInvalidArgument()) << s.name << " " << st.ToString();
    EXPECT_EQ(st.ToString().find(kValue), std::string::npos) << st.ToString();
  }
  BoxOptions two = WithSecret({"key", kValue, {}, ""});
  two.secrets.push_back({"KEY", kValue, {}, ""});
  EXPECT_TRUE(ValidateBoxOptions(two).IsInvalidArgument());
  BoxOptions nested = WithSecret({"A", kValue, {}, "placeholder-1"});
  nested.secrets.push_back({"B", "other", {}, "placeholder-12"});
  EXPECT_TRUE(ValidateBoxOptions(nested).IsInvalidArgument());
  BoxOptions none = WithSecret({"A", kValue, {}, ""});
  none.network = "none";
  EXPECT_TRUE(ValidateBoxOptions(none).IsInvalidArgument());
}

TEST(SecretPlaceholderTest, BoxLite09DefaultsAndNamesInTheEnvironment) {
  std::vector<Secret> s = {{"api_key", kValue, {}, ""},
                           {"B", kValue, {}, "given-placeholder"},
                           {"openai-key.v2", kValue, {}, ""},
                           {"", kValue, {}, ""}};
  AssignSecretPlaceholders(&s);
  EXPECT_EQ(s[0].placeholder, "<BOXLITE_SECRET:api_key>");
  EXPECT_EQ(s[1].placeholder, "given-placeholder");
  EXPECT_EQ(s[2].placeholder, "<BOXLITE_SECRET:openai-key.v2>");
  EnvList env = SecretEnv(s);
  ASSERT_EQ(env.size(), 4u);
  EXPECT_EQ(env[0].first, "BOXLITE_SECRET_API_KEY");
  EXPECT_EQ(env[0].second, s[0].placeholder);
  EXPECT_EQ(env[1].first, "BOXLITE_SECRET_B");
  EXPECT_EQ(env[2].first, "BOXLITE_SECRET_OPENAI_KEY_V2");
  EXPECT_EQ(env[3].first, "BOXLITE_SECRET__UNNAMED");
  EXPECT_TRUE(ValidateBoxOptions(WithSecret(s[0])).ok());
}

class SecretFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxlite-secrets-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static unsigned Mode(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 0777 : 0;
  }
  std::string dir_;
};

TEST_F(SecretFilesTest, ValuesAndCaKeyStayInTheBoxDirectoryOnly) {
  BoxOptions o = WithSecret({"K", kValue, {"api.test"}, ""});
  AssignSecretPlaceholders(&o.secrets);
  ASSERT_TRUE(SaveSecretValues(dir_, o.secrets).ok());
  auto ca = LoadOrCreateBoxCa(dir_, "box1");
  ASSERT_TRUE(ca.ok()) << ca.error().ToString();
  EXPECT_EQ(Mode(dir_ + "/secrets.json"), 0600u);
  EXPECT_EQ(Mode(dir_ + "/ca-key.pem"), 0600u);
  auto again = LoadOrCreateBoxCa(dir_, "box1");
  EXPECT_EQ(again->key, ca->key);  // Kept, not made anew.
  EXPECT_EQ(again->cert, ca->cert);

  // The record (what inspect shows) has the placeholder and hosts, not the value.
  std::string record = BoxOptionsToJson(o).dump();
  EXPECT_EQ(record.find(kValue), std::string::npos);
  BoxOptions back = BoxOptionsFromJson(BoxOptionsToJson(o));
  ASSERT_EQ(back.secrets.size(), 1u);
  EXPECT_EQ(back.secrets[0].placeholder, o.secrets[0].placeholder);
  EXPECT_EQ(back.secrets[0].hosts, o.secrets[0].hosts);
  EXPECT_TRUE(back.secrets[0].value.empty());
  ASSERT_TRUE(LoadSecretValues(dir_, &back.secrets).ok());
  EXPECT_EQ(back.secrets[0].value, kValue);

  // What boxlite-net gets: the CA and the values, which make a working proxy.
  setenv("SSL_CERT_FILE", (dir_ + "/ca.pem").c_str(), 1);  // Any PEM bundle will do.
  auto json = SecretProxyJson(back.secrets, *ca);
  unsetenv("SSL_CERT_FILE");
  ASSERT_TRUE(json.ok()) << json.error().ToString();
  auto config = net::SecretProxyConfigFromJson(*json);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->roots_pem, ca->cert);
  auto proxy = net::MakeSecretProxy(*config);
  ASSERT_TRUE(proxy.ok()) << proxy.error().ToString();
  EXPECT_EQ((*proxy)->ReplacementsFor("api.test").at(0).value, kValue);
  // The guest's part is the certificate: no key in it.
  EXPECT_EQ(ca->cert.find("PRIVATE"), std::string::npos);
}

TEST_F(SecretFilesTest, MissingValuesSayWhatToDo) {
  std::vector<Secret> s = {{"K", "", {}, "p-12345678"}};
  Status st = LoadSecretValues(dir_, &s);
  EXPECT_TRUE(st.IsNotFound());
  EXPECT_NE(st.ToString().find("recreate the box"), std::string::npos);
}

}  // namespace
}  // namespace boxlite::runtime
