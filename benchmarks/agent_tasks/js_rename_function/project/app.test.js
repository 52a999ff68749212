const test = require('node:test');
const assert = require('node:assert');
const { postUrl } = require('./app');

test('url', () => assert.strictEqual(postUrl('Hello World'), '/posts/hello-world'));
