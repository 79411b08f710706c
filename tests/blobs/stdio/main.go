// Command stdioblobs is an MCP stdio server for the blob tests: a stdio tenant keeps blobs
// through the box's smcp imports (docs/abi.md 2.8), a 64 KiB piece at a time.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unsafe"
)

//go:wasmimport smcp blob_open
//go:noescape
func blobOpen(name unsafe.Pointer, nameLen int32, mode int32, ctype unsafe.Pointer, ctypeLen int32) int32

//go:wasmimport smcp blob_read
//go:noescape
func blobRead(handle int32, buf unsafe.Pointer, bufLen int32) int32

//go:wasmimport smcp blob_write
//go:noescape
func blobWrite(handle int32, buf unsafe.Pointer, bufLen int32) int32

//go:wasmimport smcp blob_close
func blobClose(handle int32) int32

//go:wasmimport smcp blob_stat_into
//go:noescape
func blobStatInto(name unsafe.Pointer, nameLen int32, out unsafe.Pointer, outCap int32) int32

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

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

func put(name, text string, repeat int) (string, error) {
	n := []byte(name)
	ctype := []byte("text/plain")
	h := blobOpen(ptr(n), int32(len(n)), 1, ptr(ctype), int32(len(ctype)))
	if h < 0 {
		return "", fmt.Errorf("open: %d", h)
	}
	data := []byte(strings.Repeat(text, repeat))
	sum := sha256.Sum256(data)
	for start := 0; start < len(data); start += 65536 {
		end := min(start+65536, len(data))
		if rc := blobWrite(h, ptr(data[start:end]), int32(end-start)); rc < 0 {
			return "", fmt.Errorf("write: %d", rc)
		}
	}
	if rc := blobClose(h); rc < 0 {
		return "", fmt.Errorf("close: %d", rc)
	}
	return fmt.Sprintf("%d %s", len(data), hex.EncodeToString(sum[:])), nil
}

func get(name string) (string, error) {
	n := []byte(name)
	h := blobOpen(ptr(n), int32(len(n)), 0, nil, 0)
	if h < 0 {
		return "", fmt.Errorf("open: %d", h)
	}
	digest := sha256.New()
	buf := make([]byte, 65536)
	size := 0
	for {
		got := blobRead(h, ptr(buf), int32(len(buf)))
		if got < 0 {
			return "", fmt.Errorf("read: %d", got)
		}
		if got == 0 {
			break
		}
		digest.Write(buf[:got])
		size += int(got)
	}
	blobClose(h)
	return fmt.Sprintf("%d %s", size, hex.EncodeToString(digest.Sum(nil))), nil
}

func stat(name string) string {
	n := []byte(name)
	buf := make([]byte, 1024)
	got := blobStatInto(ptr(n), int32(len(n)), ptr(buf), int32(len(buf)))
	if got == -1 {
		return "absent"
	}
	if got < 0 || int(got) > len(buf) {
		return fmt.Sprintf("error %d", got)
	}
	return string(buf[:got])
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
		tools := []any{}
		for _, name := range []string{"put", "get", "stat"} {
			tools = append(tools, map[string]any{
				"name": name, "description": "blob " + name,
				"inputSchema": map[string]any{"type": "object"},
			})
		}
		send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{"tools": tools}})
	case "tools/call":
		args := msg.Params.Arguments
		var answer string
		var err error
		switch msg.Params.Name {
		case "put":
			answer, err = put(args.Name, args.Text, max(args.Repeat, 1))
		case "get":
			answer, err = get(args.Name)
		default:
			answer = stat(args.Name)
		}
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
