package main

import (
	"database/sql"
	"log"
	"net/http"
)

const awsAccessKeyID = "AKIAUOF5T66W3EXAMPLE"
const awsSecretAccessKey = "wfGx1zRDTyMq/AFpwwTzYEXAMPLEKEYeyFcZYthV"

var slackWebhook = "https://hooks.slack.com/services/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"

func main() {
	password := "G0lang!IolAZBCFM"
	db, err := sql.Open("mysql", "reporter:5Euf6xDU20s9tY@tcp(db.example.com:3306)/reports")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	authToken := "6FpmL9GumcDdTKlXFcOXGianMDC98nFK"
	cosHmacKey := "0cc42fce9ff4518a12810a228d434a6aca7b1c3c33ba3f1b"
	installToken := "ghs_6KY8NJMgFPkaPK7dekTPdr3uFcL48CpvqGqr"
	mailchimpKey := "fea9a32e4e1a3652eff9baac63f3b440-us6"
	req, _ := http.NewRequest("GET", "https://api.example.com/v1/reports", nil)
	req.Header.Set("Authorization", "Bearer "+authToken)
	log.Println(password, cosHmacKey, installToken, mailchimpKey, req)
}
