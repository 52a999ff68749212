import { Octokit } from "@octokit/rest";
import Stripe from "stripe";
import twilio from "twilio";

// Example credentials for the integration tests; none of these are live.
const GITHUB_OAUTH_TOKEN = "gho_bsi1qh0SUMVf2C4DgtV5FBiV4I9zDffA9jqJ";
const githubPat = "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";
const gitlabToken = "glpat-slbK-mk9YoB2D1LGRlAw";
const stripe = new Stripe("sk_test_uX3JURb14vXtvUw5ENX7uTVN", { apiVersion: "2023-10-16" });
const twilioClient = twilio("AC6f13cb1b070f1c0423942ec95920c8d1", "SKbbc4b685a04af5ff78c231c189bd624f");

export const config = {
  apiKey: "8TbABSMtUDzsY57AJRLjbMSTgEGVs5ow",
  mapsKey: "AIzaRh4EeS_NBagTe9lBlq95xI4989dbDc_ZsUa",
  clientSecret: "c8I5iXwd1YfhKUVGmPd7kfoTyvGxnsMTlW-_neUr",
  mongoUri: "mongodb+srv://analytics:0ErezWTVmZwRGw83@cluster0.example.mongodb.net/prod",
};

export function authHeaders(): Record<string, string> {
  const bearer = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ3ZWItZnJvbnRlbmQiLCJuYW1lIjoiRXhhbXBsZSBVc2VyIiwiaWF0IjoxNTE2MjM5MDIyfQ.MTO8V6dEWZBeoLNyKKf_3oLZi50lMQx-Qh5261ilToT";
  return { Authorization: `Bearer ${bearer}` };
}

export const octokit = new Octokit({ auth: GITHUB_OAUTH_TOKEN });
