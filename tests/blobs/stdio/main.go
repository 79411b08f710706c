// Command stdioblobs is an MCP stdio server for the blob tests: a stdio tenant keeps blobs
// through the Go helper package sdk/go/blob (the box's smcp imports, docs/abi.md 2.8).
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"smcp-box.sdk/go/blob"
)

type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			Name   string `json:"name"`
			Text   string `json:"text"`
			Repeat int    `json:"repeat"`
		} `json:"arguments"`
	} `json:"params"`
}

var out = bufio.NewWriter(os.Stdout)

func send(v any) {
	data, _ := json.Marshal(v)
	out.Write(data)
	out.WriteByte('\n')
	out.Flush()
}

func text(id json.RawMessage, s string, isError bool) {
	send(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
		"content": []any{map[string]any{"type": "text", "text": s}}, "isError": isError,
	}})
}

// put writes text repeated, through io.Copy: the Writer sends it a piece at a time.
func put(name, text string, repeat int) (string, error) {
	w, err := blob.Create(name, "text/plain")
	if err != nil {
		return "", err
	}
	digest := sha256.New()
	size, err := io.Copy(io.MultiWriter(w, digest), strings.NewReader(strings.Repeat(text, repeat)))
	if err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", size, hex.EncodeToString(digest.Sum(nil))), nil
}

func get(name string) (string, error) {
	r, err := blob.Open(name)
	if err != nil {
		return "", err
	}
	defer r.Close()
	digest := sha256.New()
	size, err := io.Copy(digest, r)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s", size, hex.EncodeToString(digest.Sum(nil))), nil
}

func stat(name string) (string, error) {
	info, err := blob.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(info)
	return string(data), err
}

func list(prefix string) (string, error) {
	infos, err := blob.List(prefix)
	if err != nil {
		return "", err
	}
	names := []string{}
	for _, info := range infos {
		names = append(names, fmt.Sprintf("%s %d", info.Name, info.Size))
	}
	return strings.Join(names, "\n"), nil
}

func remove(name string) (string, error) {
	deleted, err := blob.Delete(name)
	return fmt.Sprint(deleted), err
}

// small writes and reads a blob whole (WriteFile, ReadFile).
func small(name, text string) (string, error) {
	if err := blob.WriteFile(name, "text/markdown", []byte(text)); err != nil {
		return "", err
	}
	data, err := blob.ReadFile(name)
	return string(data), err
}

var tools = map[string]func(name, text string, repeat int) (string, error){
	"put":    put,
	"get":    func(name, _ string, _ int) (string, error) { return get(name) },
	"stat":   func(name, _ string, _ int) (string, error) { return stat(name) },
	"list":   func(name, _ string, _ int) (string, error) { return list(name) },
	"delete": func(name, _ string, _ int) (string, error) { return remove(name) },
	"small":  func(name, text string, _ int) (string, error) { return small(name, text) },
}

func handle(msg message) {
	switch msg.Method {
	case "initialize":
		send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{
			"protocolVersion": "2025-06-18",
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]any{"name": "stdioblobs", "version": "1"},
		}})
	case "tools/list":
		listed := []any{}
		for _, name := range []string{"put", "get", "stat", "list", "delete", "small"} {
			listed = append(listed, map[string]any{
				"name": name, "description": "blob " + name,
				"inputSchema": map[string]any{"type": "object"},
			})
		}
		send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{"tools": listed}})
	case "tools/call":
		args := msg.Params.Arguments
		tool, ok := tools[msg.Params.Name]
		if !ok {
			text(msg.ID, "no such tool", true)
			return
		}
		answer, err := tool(args.Name, args.Text, max(args.Repeat, 1))
		if err != nil {
			text(msg.ID, err.Error(), true)
		} else {
			text(msg.ID, answer, false)
		}
	default:
		send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{
			"code": -32601, "message": "no such method",
		}})
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var msg message
		if json.Unmarshal(in.Bytes(), &msg) != nil || msg.ID == nil {
			continue
		}
		handle(msg)
	}
}
