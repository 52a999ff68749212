const test = require('node:test');
const assert = require('node:assert');
const util = require('./util');
const { postUrl } = require('./app');

test('renamed', () => {
  assert.strictEqual(typeof util.toSlug, 'function');
  assert.strictEqual(util.slugify, undefined);
  assert.strictEqual(postUrl('A B'), '/posts/a-b');
});
