package main

// The box's key-value store, through the smcp host imports a stdio tenant may use (docs/abi.md,
// "stdio modules"). The values outlive the instance: smcp-box runs each request in a fresh
// instance, so anything kept in Go variables is gone by the next request.

import (
	"encoding/json"
	"errors"
	"unsafe"
)

//go:wasmimport smcp kv_get_into
//go:noescape
func kvGetInto(key unsafe.Pointer, keyLen int32, out unsafe.Pointer, outCap int32) int32

//go:wasmimport smcp kv_list_into
//go:noescape
func kvListInto(prefix unsafe.Pointer, prefixLen int32, out unsafe.Pointer, outCap int32) int32

//go:wasmimport smcp kv_set
//go:noescape
func kvSet(key unsafe.Pointer, keyLen int32, value unsafe.Pointer, valueLen int32) int32

//go:wasmimport smcp kv_delete
//go:noescape
func kvDelete(key unsafe.Pointer, keyLen int32) int32

func ptr(s []byte) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}

// into calls a caller-buffer import, growing the buffer once when the value is larger.
func into(call func(out unsafe.Pointer, outCap int32) int32) ([]byte, bool) {
	buf := make([]byte, 256)
	n := call(ptr(buf), int32(len(buf)))
	if n < 0 {
		return nil, false
	}
	if int(n) > len(buf) {
		buf = make([]byte, n)
		n = call(ptr(buf), int32(len(buf)))
		if n < 0 || int(n) > len(buf) {
			return nil, false
		}
	}
	return buf[:n], true
}

func kvGet(key string) (string, bool) {
	k := []byte(key)
	value, ok := into(func(out unsafe.Pointer, outCap int32) int32 {
		return kvGetInto(ptr(k), int32(len(k)), out, outCap)
	})
	return string(value), ok
}

func kvList(prefix string) []string {
	p := []byte(prefix)
	raw, ok := into(func(out unsafe.Pointer, outCap int32) int32 {
		return kvListInto(ptr(p), int32(len(p)), out, outCap)
	})
	var keys []string
	if ok {
		json.Unmarshal(raw, &keys)
	}
	return keys
}

func kvPut(key, value string) error {
	k, v := []byte(key), []byte(value)
	switch kvSet(ptr(k), int32(len(k)), ptr(v), int32(len(v))) {
	case 0:
		return nil
	case -1:
		return errors.New("storage quota exceeded")
	default:
		return errors.New("storage failure")
	}
}

func kvRemove(key string) error {
	k := []byte(key)
	if kvDelete(ptr(k), int32(len(k))) != 0 {
		return errors.New("storage failure")
	}
	return nil
}
