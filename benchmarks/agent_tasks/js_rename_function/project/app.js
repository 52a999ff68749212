const { slugify } = require('./util');

function postUrl(title) {
  return '/posts/' + slugify(title);
}

module.exports = { postUrl };
