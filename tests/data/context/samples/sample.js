import { readFile } from "./fs-utils.js";
const path = require("path");

export class Config {
  constructor(root) {
    this.root = root;
  }

  load(name) {
    return readFile(path.join(this.root, name));
  }
}

export function parseConfig(text) {
  return JSON.parse(text);
}

const merge = (a, b) => Object.assign({}, a, b);
