module smcp-box.test/stdioblobs

go 1.24
