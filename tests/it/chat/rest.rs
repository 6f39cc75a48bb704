//! The REST twins of `/chat`'s events (contract §4, §8): messages sent, edited, read,
//! deleted and listed, conversations paged and members changed over REST answer and
//! broadcast like the events.

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// REST calls as user `id` (role `user`).
struct As<'a> {
    server: &'a TestServer,
    bearer: String,
}

fn as_user(server: &TestServer, id: i64) -> As<'_> {
    As {
        server,
        bearer: token(id, &["user"]),
    }
}

impl As<'_> {
    /// Status and body.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.call(method, path, &self.bearer, body).await
    }

    /// The body of an answer that must be `expected`.
    async fn expect(&self, expected: u16, method: &str, path: &str, body: Option<Value>) -> Value {
        self.server
            .expect(expected, method, path, &self.bearer, body)
            .await
    }
}

/// The REST twins of the message events (seed 004: a backend posts without a socket):
/// same answers, same broadcasts (to every socket of the room: none is acting), same
/// database state.
#[sqlx::test]
async fn rest_twins_send_edit_read_delete_and_list_like_the_events(pool: PgPool) {
    let (server, conv, alice, bob) = pair(pool.clone()).await;
    let path = format!("/api/conversations/{conv}/messages");

    let (status, sent) = as_user(&server, 1)
        .call(
            "POST",
            &path,
            Some(json!({ "content": " hello ", "clientId": "k1" })),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["content"], "hello");
    assert_eq!(sent["sender_id"], 1);
    // No socket acted: the sender's own socket hears it too.
    assert_eq!(alice.recv("message:created").await, sent);
    assert_eq!(bob.recv("message:created").await, sent);
    // The same clientId answers the first message and announces nothing.
    let again = as_user(&server, 1)
        .expect(
            201,
            "POST",
            &path,
            Some(json!({ "content": "hello", "clientId": "k1" })),
        )
        .await;
    assert_eq!(again["_id"], sent["_id"]);
    bob.expect_none("message:created", QUIET).await;
    assert_eq!(count_messages(&pool).await, 1);
    // A socket send and a REST send leave the same kind of row.
    bob.send_message(&conv, "from the socket").await;
    alice.recv("message:created").await;

    let page = as_user(&server, 2)
        .expect(200, "GET", &format!("{path}?limit=10"), None)
        .await;
    let listed = bob
        .ok(
            "message:list",
            json!({ "conversationId": conv, "limit": 10 }),
        )
        .await;
    assert_eq!(page, listed, "the same page as message:list");
    assert_eq!(page.as_array().unwrap().len(), 2);
    let (_, older) = as_user(&server, 2)
        .call(
            "GET",
            &format!("{path}?before={}", page[0]["_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(older.as_array().unwrap().len(), 1);

    let id = sent["_id"].as_str().unwrap();
    let (status, body) = as_user(&server, 2)
        .call(
            "PATCH",
            &format!("/api/messages/{id}"),
            Some(json!({ "content": "not mine" })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let edited = as_user(&server, 1)
        .expect(
            200,
            "PATCH",
            &format!("/api/messages/{id}"),
            Some(json!({ "content": "hello again" })),
        )
        .await;
    assert_eq!(edited["content"], "hello again");
    assert_eq!(bob.recv("message:updated").await, edited);

    let read = as_user(&server, 2)
        .expect(200, "POST", &format!("/api/messages/{id}/read"), None)
        .await;
    assert_eq!(read["messageId"], id);
    assert_eq!(read["readerId"], 2);
    assert!(read["readAt"].as_str().unwrap().ends_with('Z'));
    let heard = alice.recv("message:read").await;
    assert_eq!(
        (heard["readerId"].clone(), heard["readAt"].clone()),
        (json!(2), read["readAt"].clone())
    );

    let (status, _) = as_user(&server, 2)
        .call("DELETE", &format!("/api/messages/{id}"), None)
        .await;
    assert_eq!(status, 403, "only the sender or the owner");
    let (status, body) = as_user(&server, 1)
        .call("DELETE", &format!("/api/messages/{id}"), None)
        .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(
        bob.recv("message:deleted").await,
        json!({ "messageId": id, "conversationId": conv })
    );
    let deleted: bool =
        sqlx::query_scalar("select deleted_at is not null from messages where id = $1::uuid")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(deleted);

    // Refusals: the event's codes, rights before the body.
    let stranger = 9;
    let (status, _) = as_user(&server, stranger)
        .call("POST", &path, Some(json!({ "content": "" })))
        .await;
    assert_eq!(status, 403, "a non-member learns nothing from validation");
    let body = as_user(&server, 1)
        .expect(400, "POST", &path, Some(json!({ "content": "" })))
        .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("content"),
        "{body}"
    );
    for (status, method, path, user) in [
        (400, "GET", format!("{path}?limit=0"), 1),
        (
            404,
            "GET",
            format!("/api/conversations/{}/messages", Uuid::new_v4()),
            1,
        ),
        (400, "POST", "/api/messages/nope/read".to_owned(), 1),
    ] {
        as_user(&server, user)
            .expect(status, method, &path, None)
            .await;
    }
}

/// `GET /api/conversations`: latest activity first, cursor paging, unread counts;
/// `GET /api/conversations/:id` for members; members added and removed over REST.
#[sqlx::test]
async fn rest_conversations_page_by_activity_and_members_change_like_the_events(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let first = create_conversation(&server, 1, "group", &[2]).await;
    let second = create_conversation(&server, 1, "group", &[3]).await;
    let third = create_conversation(&server, 1, "private", &[4]).await;
    // A message makes the first conversation the most recent one.
    let bob = joined(&server, 2, &first).await;
    bob.send_message(&first, "bump").await;
    let page = as_user(&server, 1)
        .expect(200, "GET", "/api/conversations?limit=2", None)
        .await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), third.as_str()]);
    assert_eq!(page["items"][0]["unread_count"], 1);
    assert_eq!(page["items"][1]["unread_count"], 0);
    assert_eq!(page["items"][0]["participants"], json!([1, 2]));
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest_page) = as_user(&server, 1)
        .call(
            "GET",
            &format!("/api/conversations?limit=2&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(rest_page["items"][0]["_id"], second.as_str());
    assert_eq!(rest_page["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest_page["next_cursor"], Value::Null);
    for bad in ["cursor=forged", "cursor=12.34", "limit=0", "limit=101"] {
        let (status, body) = as_user(&server, 1)
            .call("GET", &format!("/api/conversations?{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Bob sees only his own.
    let (_, his) = as_user(&server, 2)
        .call("GET", "/api/conversations", None)
        .await;
    assert_eq!(his["items"].as_array().unwrap().len(), 1);

    let got = as_user(&server, 2)
        .expect(200, "GET", &format!("/api/conversations/{first}"), None)
        .await;
    assert_eq!(got["participants"], json!([1, 2]));
    as_user(&server, 3)
        .expect(403, "GET", &format!("/api/conversations/{first}"), None)
        .await;
    as_user(&server, 3)
        .expect(
            404,
            "GET",
            &format!("/api/conversations/{}", Uuid::new_v4()),
            None,
        )
        .await;

    let members = format!("/api/conversations/{first}/members");
    let carol = server.client("/chat", 5).await;
    let (status, _) = as_user(&server, 2)
        .call("POST", &members, Some(json!({ "userId": 5 })))
        .await;
    assert_eq!(status, 403, "only the owner adds");
    let added = as_user(&server, 1)
        .expect(201, "POST", &members, Some(json!({ "userId": 5 })))
        .await;
    assert_eq!(added, member(&first, 5));
    let expected = member(&first, 5);
    assert_eq!(bob.recv("members:added").await, expected);
    assert_eq!(carol.recv("members:added").await, expected);
    let (status, _) = as_user(&server, 1)
        .call("POST", &members, Some(json!({ "userId": 5 })))
        .await;
    assert_eq!(status, 200, "already a member");
    bob.expect_none("members:added", QUIET).await;
    let (status, _) = as_user(&server, 1)
        .call(
            "POST",
            &format!("/api/conversations/{third}/members"),
            Some(json!({ "userId": 6 })),
        )
        .await;
    assert_eq!(status, 400, "a private conversation takes no members");

    as_user(&server, 1)
        .expect(204, "DELETE", &format!("{members}?userId=5"), None)
        .await;
    assert_eq!(bob.recv("members:removed").await, expected);
    let (status, body) = as_user(&server, 1)
        .call("DELETE", &format!("{members}?userId=5"), None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = as_user(&server, 1).call("DELETE", &members, None).await;
    assert_eq!(status, 400, "userId is required");
}
