// Command docklock-interop checks DockLock's ledger artefacts with implementations
// DockLock did not write: golang.org/x/mod/sumdb/note (the standard Ed25519 note line),
// github.com/transparency-dev/formats (tlog-cosignature/v1 and checkpoint parsing) and
// github.com/transparency-dev/merkle (RFC 6962 inclusion and consistency proofs).
//
// Test tooling only, never part of the DockLock package. Input: a JSON file (argv[1]);
// output: one JSON line on stdout; exit 1 with the reason on stderr if anything fails.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

type inclusion struct {
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
	Root     string   `json:"root"`
}

type consistency struct {
	Size1 uint64   `json:"size1"`
	Size2 uint64   `json:"size2"`
	Root1 string   `json:"root1"`
	Root2 string   `json:"root2"`
	Proof []string `json:"proof"`
}

type input struct {
	Origin      string        `json:"origin"`
	LogVKey     string        `json:"log_vkey"`
	Checkpoint  string        `json:"checkpoint"`
	WitnessVKey string        `json:"witness_vkey"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

type output struct {
	OK            bool     `json:"ok"`
	Origin        string   `json:"origin"`
	Size          uint64   `json:"size"`
	Root          string   `json:"root"`
	Verified      []string `json:"verified"`
	Inclusions    int      `json:"inclusions"`
	Consistencies int      `json:"consistencies"`
}

func b64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		fail("bad base64 %q: %v", s, err)
	}
	return b
}

func b64s(in []string) [][]byte {
	out := make([][]byte, 0, len(in))
	for _, s := range in {
		out = append(out, b64(s))
	}
	return out
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: docklock-interop INPUT.json")
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("read input: %v", err)
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		fail("parse input: %v", err)
	}
	out := output{Origin: in.Origin}

	// 1. The standard Ed25519 note line, with the Go module proxy's own note package.
	logV, err := note.NewVerifier(in.LogVKey)
	if err != nil {
		fail("log vkey: %v", err)
	}
	n, err := note.Open([]byte(in.Checkpoint), note.VerifierList(logV))
	if err != nil {
		fail("sumdb/note: %v", err)
	}
	out.Verified = append(out.Verified, "sumdb/note:"+n.Sigs[0].Name)

	// 2. The witness cosignature and the checkpoint body, with transparency-dev/formats.
	if in.WitnessVKey != "" {
		witV, err := fnote.NewVerifierForCosignatureV1(in.WitnessVKey)
		if err != nil {
			fail("witness vkey: %v", err)
		}
		logV2, err := fnote.NewVerifier(in.LogVKey)
		if err != nil {
			fail("formats log vkey: %v", err)
		}
		cp, _, fn, err := log.ParseCheckpoint([]byte(in.Checkpoint), in.Origin, logV2, witV)
		if err != nil {
			fail("formats/log.ParseCheckpoint: %v", err)
		}
		cosigned := false
		for _, s := range fn.Sigs {
			if s.Name == witV.Name() && s.Hash == witV.KeyHash() {
				cosigned = true
				if _, err := fnote.CoSigV1Timestamp(s); err != nil {
					fail("cosignature timestamp: %v", err)
				}
			}
		}
		if !cosigned {
			fail("no verified cosignature by %s", witV.Name())
		}
		out.Verified = append(out.Verified, "formats/cosignature-v1:"+witV.Name())
		out.Size = cp.Size
		out.Root = base64.StdEncoding.EncodeToString(cp.Hash)
	}

	// 3. Merkle proofs with transparency-dev/merkle's RFC 6962 hasher.
	h := rfc6962.DefaultHasher
	for i, p := range in.Inclusion {
		if err := proof.VerifyInclusion(h, p.Index, p.Size, b64(p.LeafHash), b64s(p.Proof), b64(p.Root)); err != nil {
			fail("inclusion proof %d (leaf %d of %d): %v", i, p.Index, p.Size, err)
		}
		out.Inclusions++
	}
	for i, c := range in.Consistency {
		if err := proof.VerifyConsistency(h, c.Size1, c.Size2, b64s(c.Proof), b64(c.Root1), b64(c.Root2)); err != nil {
			fail("consistency proof %d (%d -> %d): %v", i, c.Size1, c.Size2, err)
		}
		out.Consistencies++
	}
	out.OK = true
	enc, _ := json.Marshal(out)
	fmt.Println(string(enc))
}
