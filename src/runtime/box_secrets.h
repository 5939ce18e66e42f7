// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Secrets of a box on the runtime's side (docs/networking.md, "Secrets"):
// - ValidateSecrets: the rules of BoxOptions::secrets (include/boxlite/options.h), called
//   by ValidateBoxOptions;
// - placeholders: given ones are kept, missing ones are made at create from the OS RNG
//   ("boxlite-secret-<NAME>-<32 hex digits>"); the guest sees BOXLITE_SECRET_<NAME>=<it>
//   in the environment of the main command and of every exec (SecretEnv);
// - the box directory keeps the values in `secrets.json` and the box CA's key in
//   `ca-key.pem` (both 0600) and its certificate in `ca.pem`; the box record, which
//   `inspect` shows, keeps names, hosts and placeholders only (box_record.cc). A box
//   without a directory (not persistent) keeps both in memory. Removing the box removes
//   its directory;
// - SecretProxyJson: the document boxlite-net reads from a descriptor
//   (src/net/secret_config.h).
// Thread-safety: pure functions plus file I/O in a box's own directory.
#pragma once

#include <string>
#include <vector>

#include "boxlite/options.h"
#include "boxlite/result.h"

namespace boxlite::runtime {

constexpr size_t kMaxSecretValueBytes = 64 << 10;
constexpr size_t kMaxSecrets = 64;
constexpr size_t kMaxSecretNameBytes = 255;

Status ValidateSecrets(const std::vector<Secret>& secrets, const std::string& network);

// Fills every empty placeholder.
void AssignSecretPlaceholders(std::vector<Secret>* secrets);

// BOXLITE_SECRET_<NAME>=<placeholder> for each secret.
EnvList SecretEnv(const std::vector<Secret>& secrets);

struct BoxCaPem {
  std::string key;
  std::string cert;
};

// Writes secrets.json (values by name) into the box directory, 0600.
Status SaveSecretValues(const std::string& dir, const std::vector<Secret>& secrets);
// Fills each secret's value from secrets.json.
Status LoadSecretValues(const std::string& dir, std::vector<Secret>* secrets);

// The box CA in `dir` (ca-key.pem, ca.pem), made and saved there the first time; with an
// empty `dir`, a fresh CA that the caller keeps.
Result<BoxCaPem> LoadOrCreateBoxCa(const std::string& dir, const std::string& box_id);

// The document for boxlite-net's --secrets-fd: CA, the host's roots, the secrets.
Result<std::string> SecretProxyJson(const std::vector<Secret>& secrets, const BoxCaPem& ca);

}  // namespace boxlite::runtime
