module smcp-box.test/stdiofaults

go 1.24
